import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

// The chat is built into web/dist, which the server serves at `/`. In `npm run dev:web` Vite proxies
// the socket.io and HTTP API routes to a hub on port 3000.
export default defineConfig({
  root: "web",
  plugins: [react()],
  build: { outDir: "dist", emptyOutDir: true },
  server: {
    proxy: {
      "/socket.io": { target: "http://127.0.0.1:3000", ws: true },
      "/api": "http://127.0.0.1:3000",
    },
  },
});
