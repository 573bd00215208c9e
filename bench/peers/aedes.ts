/**
 * The aedes peer: an MQTT broker in Node (aedes with its default in-memory persistence, so QoS 1
 * messages are acked without any fsync), in its own process on a free port.
 */
import net from "node:net";
import { Aedes } from "aedes";

const broker = await Aedes.createBroker();
const server = net.createServer((socket) => broker.handle(socket));
server.listen(Number(process.env.PORT ?? 0), "127.0.0.1", () => {
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  console.log(`aedes: listening on mqtt://127.0.0.1:${port}`);
});
const stop = () => {
  server.close();
  broker.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 2000).unref();
};
process.once("SIGTERM", stop);
process.once("SIGINT", stop);
