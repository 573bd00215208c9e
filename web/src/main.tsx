import { StrictMode } from "react";
import { createRoot } from "react-dom/client";

// A placeholder until the chat lands (issue 4): it says what is running and where the docs are.
function App() {
  return (
    <main style={{ fontFamily: "system-ui, sans-serif", maxWidth: 640, margin: "4rem auto", lineHeight: 1.5 }}>
      <h1>Herald</h1>
      <p>The hub is running. The chat app is on its way; meanwhile use the SDK, the CLI or the HTTP API.</p>
    </main>
  );
}

createRoot(document.getElementById("root")!).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
