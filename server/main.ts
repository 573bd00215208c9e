/**
 * `npm start`: read the settings, serve, and stop gracefully on SIGTERM or SIGINT (within 5 s,
 * without losing anything that was answered).
 */
import { type Config, ConfigError, environment, isLoopback, loadConfig } from "./config.js";
import { createHerald } from "./herald.js";
import { storeLocation } from "./store/open.js";

/** `env`: variables on top of the process's environment (the CLI's `serve` flags). */
export async function serve(env: Record<string, string> = {}): Promise<void> {
  let config: Readonly<Config>;
  try {
    config = loadConfig(environment(env));
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      process.exit(1);
    }
    throw err;
  }
  const herald = await createHerald(config);
  console.log(`herald: listening on ${herald.url} (data in ${storeLocation(config)}, durability ${config.durability})`);
  if (config.auth === "dev" && !isLoopback(config.host)) {
    // PROTOCOL: allowed only with HERALD_DEV_PUBLIC=1, and then said on every start.
    console.warn(
      `herald: WARNING: HERALD_AUTH=dev on ${config.host}: anyone who reaches this address can claim any user${config.admins ? "" : " and is an admin"}; use HERALD_AUTH=jwt for anything but a trusted network`,
    );
  }

  const stop = (signal: string) => {
    console.log(`herald: ${signal}, stopping`);
    setTimeout(() => {
      console.error("herald: did not stop within 5 s, exiting");
      process.exit(1);
    }, 5000).unref();
    herald.close().then(
      () => process.exit(0),
      (err: unknown) => {
        console.error("herald: error while stopping", err);
        process.exit(1);
      },
    );
  };
  process.once("SIGTERM", () => stop("SIGTERM"));
  process.once("SIGINT", () => stop("SIGINT"));
}

if (import.meta.url === `file://${process.argv[1]}`) {
  serve().catch((err: unknown) => {
    console.error("herald: failed to start:", err instanceof Error ? err.message : err);
    process.exit(1);
  });
}
