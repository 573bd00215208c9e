/**
 * Splits message text into plain text and http(s) links (issue 14), for MessageText to render as
 * text nodes and anchors, so no markup from a message ever reaches the DOM as HTML.
 *
 * Hand-written rather than linkifyjs + linkify-react: those link bare domains and e-mail addresses
 * too (`example.com`, `a@b.io`), ship a TLD table for it, and would still need an http(s)-only
 * validation on top; finding `http://` and `https://` takes one regex and a trim, and the scheme
 * check below is then ours to read rather than a library option to trust.
 */

export type LinkPart = { text: string } | { href: string; text: string };

// Not mid-word, so that `xhttps://…` stays text; `<` and `>` end a URL, as in `<https://…>`.
const CANDIDATE = /(?<![\p{L}\p{N}_])https?:\/\/[^\s<>]+/giu;
const SENTENCE_END = ".,;:!?";
const CLOSERS: ReadonlyMap<string, string> = new Map([
  [")", "("],
  ["]", "["],
]);

/** The parts of `text` in order; their `text`s joined are `text` exactly. */
export function linkify(text: string): LinkPart[] {
  const parts: LinkPart[] = [];
  let plainFrom = 0;
  for (const match of text.matchAll(CANDIDATE)) {
    const start = match.index;
    const url = trimTrailing(match[0]);
    const href = safeHref(url);
    if (href === undefined) continue;
    if (start > plainFrom) parts.push({ text: text.slice(plainFrom, start) });
    parts.push({ href, text: url });
    plainFrom = start + url.length;
  }
  if (plainFrom < text.length) parts.push({ text: text.slice(plainFrom) });
  return parts;
}

/**
 * Drops what more likely ends the sentence than the URL: punctuation, and a closing bracket or
 * quote that has no partner inside the URL (`(see https://a.example/x)`), while keeping balanced
 * ones (`https://en.wikipedia.org/wiki/Foo_(bar)`). Counts once, so a URL of 64 KiB of `)` is linear.
 */
function trimTrailing(url: string): string {
  const counts = new Map<string, number>();
  for (const ch of url) counts.set(ch, (counts.get(ch) ?? 0) + 1);
  const count = (ch: string) => counts.get(ch) ?? 0;
  let end = url.length;
  for (; end > 0; end--) {
    const ch = url.charAt(end - 1);
    const opener = CLOSERS.get(ch);
    const unpaired =
      opener !== undefined ? count(ch) > count(opener) : (ch === "'" || ch === '"') && count(ch) % 2 === 1;
    if (!unpaired && !SENTENCE_END.includes(ch)) break;
    counts.set(ch, count(ch) - 1);
  }
  return url.slice(0, end);
}

/** The URL as the browser would follow it, if it parses and is http(s); the regex alone lets `http://` through. */
function safeHref(url: string): string | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return undefined;
  }
  return parsed.protocol === "http:" || parsed.protocol === "https:" ? parsed.href : undefined;
}
