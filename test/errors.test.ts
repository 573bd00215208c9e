/**
 * shared/errors.ts is the one table of error codes: docs/protocol.md, the repository's copy of the
 * contract, must list exactly its codes, each with its HTTP status. (PROTOCOL.md, the binding page,
 * lives outside the repository; docs/protocol.md is kept in step with it by hand.)
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { describe, it } from "node:test";
import { ERROR_CODES, ERRORS, HeraldError, isErrorCode } from "../shared/errors.js";
import { ROOT } from "./helpers.js";

const DOCS = path.join(ROOT, "docs", "protocol.md");

/** The text of a `## heading` section. */
function section(text: string, heading: string): string {
  const start = text.indexOf(`\n## ${heading}\n`);
  assert.ok(start >= 0, `a "## ${heading}" section`);
  const end = text.indexOf("\n## ", start + 1);
  return text.slice(start, end < 0 ? undefined : end);
}

describe("error codes", () => {
  it("has an HTTP status and a description for every code", () => {
    assert.ok(ERROR_CODES.length > 0);
    for (const code of ERROR_CODES) {
      assert.match(code, /^[A-Z_]+$/);
      assert.ok(ERRORS[code].status >= 400 && ERRORS[code].status <= 599, code);
      assert.ok(ERRORS[code].when.length > 0, code);
      assert.ok(isErrorCode(code));
    }
    assert.equal(isErrorCode("NOPE"), false);
    assert.equal(isErrorCode("toString"), false);
  });

  it("puts an Err on the wire: code and message, retryAfterMs only when there is one", () => {
    assert.deepEqual(new HeraldError("FORBIDDEN", "no").toJSON(), { code: "FORBIDDEN", message: "no" });
    assert.deepEqual(JSON.parse(JSON.stringify(new HeraldError("RATE_LIMITED", "slow", { retryAfterMs: 5 }))), {
      code: "RATE_LIMITED",
      message: "slow",
      retryAfterMs: 5,
    });
    const back = HeraldError.fromWire({ code: "TIMEOUT", message: "late" });
    assert.equal(back.code, "TIMEOUT");
    assert.equal("retryAfterMs" in back.toJSON(), false);
  });

  it("lists exactly these codes, each with its HTTP status, in docs/protocol.md's Errors table", () => {
    // No skip: a missing docs/protocol.md fails here.
    const rows = section(fs.readFileSync(DOCS, "utf8"), "Errors")
      .split("\n")
      .filter((l) => l.startsWith("| `"));
    const table = new Map<string, number>();
    for (const row of rows) {
      const [, code, status] = row.split("|").map((cell) => cell.trim());
      const name = /^`([A-Z_]+)`$/.exec(code ?? "")?.[1];
      assert.ok(name, `a code in ${row}`);
      table.set(name, Number(status));
    }
    assert.deepEqual([...table.keys()].sort(), [...ERROR_CODES].sort());
    for (const code of ERROR_CODES) assert.equal(table.get(code), ERRORS[code].status, code);
  });
});
