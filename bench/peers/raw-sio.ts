/**
 * The ceiling: a raw socket.io server with no storage. A publish is answered at once and the
 * turn's messages are broadcast as one `messages` array; acks are accepted and ignored.
 */
import { startRawPeer } from "./sio-common.js";

startRawPeer("raw socket.io");
