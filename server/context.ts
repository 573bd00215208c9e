/** What every handler is given: the settings and the parts of one running hub. */
import type { Cluster } from "./cluster.js";
import type { Config } from "./config.js";
import type { Delivery } from "./delivery.js";
import type { Groups } from "./groups.js";
import type { Logger } from "./log.js";
import type { Metrics } from "./metrics.js";
import type { Presence } from "./presence.js";
import type { Requests } from "./requests.js";
import type { Store } from "./store/store.js";
import type { Transactions } from "./transactions.js";

export interface Context {
  config: Readonly<Config>;
  store: Store;
  delivery: Delivery;
  groups: Groups;
  presence: Presence;
  requests: Requests;
  transactions: Transactions;
  /** The other nodes, in a cluster (HERALD_REDIS_URL); undefined on a node of its own. */
  cluster?: Cluster;
  metrics: Metrics;
  log: Logger;
}
