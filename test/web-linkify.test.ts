/** web/src/linkify.ts (issue 14): which parts of a message's text become links, and that none of it is lost. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type LinkPart, linkify } from "../web/src/linkify.js";

/** `[href, text]` for a link, the text alone for plain text; and every case checks the round trip. */
function parts(text: string): (string | [string, string])[] {
  const result = linkify(text);
  assert.equal(result.map((p) => p.text).join(""), text, "the parts join back to the input");
  return result.map((p: LinkPart) => ("href" in p ? [p.href, p.text] : p.text));
}

describe("web linkify", () => {
  it("leaves text without URLs as one text part, and empty text as none", () => {
    assert.deepEqual(parts("hello, world: no links here."), ["hello, world: no links here."]);
    assert.deepEqual(parts("example.com and www.example.com are not linked"), [
      "example.com and www.example.com are not linked",
    ]);
    assert.deepEqual(parts(""), []);
  });

  it("finds one URL, and several, between text", () => {
    assert.deepEqual(parts("https://example.com/a?b=1&c=2#d"), [
      ["https://example.com/a?b=1&c=2#d", "https://example.com/a?b=1&c=2#d"],
    ]);
    assert.deepEqual(parts("see http://a.example/x and\nhttps://b.example/y?q=1 too"), [
      "see ",
      ["http://a.example/x", "http://a.example/x"],
      " and\n",
      ["https://b.example/y?q=1", "https://b.example/y?q=1"],
      " too",
    ]);
    assert.deepEqual(parts("https://a.example/ https://b.example/"), [
      ["https://a.example/", "https://a.example/"],
      " ",
      ["https://b.example/", "https://b.example/"],
    ]);
  });

  it("links the URL as the browser would follow it, showing it as written", () => {
    assert.deepEqual(parts("HTTPS://Example.COM"), [["https://example.com/", "HTTPS://Example.COM"]]);
  });

  it("leaves punctuation that ends a sentence out of the link", () => {
    for (const end of [".", ",", ";", ":", "!", "?", "...", "?!"]) {
      assert.deepEqual(parts(`go to https://a.example/x${end}`), [
        "go to ",
        ["https://a.example/x", "https://a.example/x"],
        end,
      ]);
    }
    assert.deepEqual(parts("https://a.example/x?y=1.2"), [["https://a.example/x?y=1.2", "https://a.example/x?y=1.2"]]);
  });

  it("leaves an unbalanced closing bracket or quote out, and keeps balanced ones", () => {
    assert.deepEqual(parts("(see https://a.example/x)"), [
      "(see ",
      ["https://a.example/x", "https://a.example/x"],
      ")",
    ]);
    assert.deepEqual(parts("https://en.wikipedia.org/wiki/Foo_(bar)"), [
      ["https://en.wikipedia.org/wiki/Foo_(bar)", "https://en.wikipedia.org/wiki/Foo_(bar)"],
    ]);
    assert.deepEqual(parts("(https://en.wikipedia.org/wiki/Foo_(bar))."), [
      "(",
      ["https://en.wikipedia.org/wiki/Foo_(bar)", "https://en.wikipedia.org/wiki/Foo_(bar)"],
      ").",
    ]);
    assert.deepEqual(parts("[https://a.example/x]"), ["[", ["https://a.example/x", "https://a.example/x"], "]"]);
    assert.deepEqual(parts(`he said "https://a.example/x" and 'https://b.example/y'.`), [
      'he said "',
      ["https://a.example/x", "https://a.example/x"],
      `" and '`,
      ["https://b.example/y", "https://b.example/y"],
      "'.",
    ]);
    assert.deepEqual(parts("<https://a.example/x>"), ["<", ["https://a.example/x", "https://a.example/x"], ">"]);
  });

  it("never links other schemes, whatever their case", () => {
    for (const text of [
      "javascript:alert(1)",
      "JAVASCRIPT:alert(document.cookie)",
      "JavaScript://example.com/%0Aalert(1)",
      "data:text/html,<script>alert(1)</script>",
      "vbscript:msgbox(1)",
      "ftp://example.com/file",
      "mailto:a@example.com",
    ]) {
      assert.deepEqual(parts(text), [text], text);
    }
  });

  it("leaves a scheme with no host, or a URL that does not parse, as text", () => {
    for (const text of [
      "http://",
      "https://",
      "see http:// here",
      "http://.",
      "https://?!",
      "http://[::1",
      "http://a:b",
    ]) {
      assert.deepEqual(parts(text), [text], text);
    }
  });

  it("does not match mid-word", () => {
    assert.deepEqual(parts("xhttps://a.example/"), ["xhttps://a.example/"]);
    assert.deepEqual(parts("javascripthttp://a.example/"), ["javascripthttp://a.example/"]);
    assert.deepEqual(parts("ahttps://a.example/ https://b.example/"), [
      "ahttps://a.example/ ",
      ["https://b.example/", "https://b.example/"],
    ]);
  });

  it("links only the http(s) URL inside a javascript: text, which itself stays text", () => {
    assert.deepEqual(parts("javascript:alert('https://a.example/')"), [
      "javascript:alert('",
      ["https://a.example/", "https://a.example/"],
      "')",
    ]);
  });

  it("keeps non-ASCII text and URLs intact", () => {
    assert.deepEqual(parts("voilà https://例え.jp/パス — ok 🎉"), [
      "voilà ",
      ["https://xn--r8jz45g.jp/%E3%83%91%E3%82%B9", "https://例え.jp/パス"],
      " — ok 🎉",
    ]);
  });

  it("stays linear on a long run of closing brackets", () => {
    const text = `https://a.example/${")".repeat(60_000)}`;
    const started = performance.now();
    assert.deepEqual(parts(text), [["https://a.example/", "https://a.example/"], ")".repeat(60_000)]);
    assert.ok(performance.now() - started < 1000);
  });
});
