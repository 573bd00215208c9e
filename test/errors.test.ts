/**
 * shared/errors.ts is the one table of error codes: it must list exactly the codes of PROTOCOL.md's
 * Errors table, with the HTTP statuses of its HTTP section, and docs/protocol.md must name them all.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { describe, it } from "node:test";
import { ERROR_CODES, ERRORS, HeraldError, isErrorCode } from "../shared/errors.js";
import { ROOT } from "./helpers.js";

const PROTOCOL = "/work/shared/PROTOCOL.md";
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

  const protocol = fs.existsSync(PROTOCOL) ? fs.readFileSync(PROTOCOL, "utf8") : undefined;

  it("lists exactly the codes of PROTOCOL.md's Errors table", { skip: !protocol && "no PROTOCOL.md" }, () => {
    const rows = section(protocol!, "Errors")
      .split("\n")
      .filter((l) => l.startsWith("| `"));
    const codes = rows.flatMap((l) => [...l.split("|")[1]!.matchAll(/`([A-Z_]+)`/g)].map((m) => m[1]!));
    assert.deepEqual([...codes].sort(), [...ERROR_CODES].sort());
  });

  it("maps each code to the HTTP status PROTOCOL.md gives it", { skip: !protocol && "no PROTOCOL.md" }, () => {
    const http = section(protocol!, "HTTP");
    const list = /with the status:([\s\S]*?)\./.exec(http.replaceAll("\n", " "));
    assert.ok(list, "the status list of the HTTP section");
    const statuses = new Map<string, number>();
    for (const part of list[1]!.split(";")) {
      const status = /(\d{3})/.exec(part);
      if (!status) continue;
      // Settings named in the list (the parser limit) are no codes.
      for (const m of part.matchAll(/`([A-Z_]+)`/g))
        if (!m[1]!.startsWith("HERALD_")) statuses.set(m[1]!, Number(status[1]));
    }
    assert.ok(statuses.size >= 10, `parsed ${statuses.size} statuses`);
    for (const [code, status] of statuses) {
      assert.ok(isErrorCode(code), `${code} is a code`);
      assert.equal(ERRORS[code].status, status, code);
    }
    // Every code but REPLACED (never an HTTP answer) has its status in PROTOCOL.md.
    assert.deepEqual(
      ERROR_CODES.filter((c) => !statuses.has(c)),
      ["REPLACED"],
    );
  });

  it("is named in full in docs/protocol.md", { skip: !fs.existsSync(DOCS) && "no docs/protocol.md yet" }, () => {
    const docs = fs.readFileSync(DOCS, "utf8");
    for (const code of ERROR_CODES) assert.ok(docs.includes(`\`${code}\``), `docs/protocol.md names ${code}`);
  });
});
