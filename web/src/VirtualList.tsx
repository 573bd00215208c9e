/**
 * A hand-written virtualized list for chat: items of varying height, measured once rendered, only
 * the visible ones (plus some overscan) in the DOM, so a room of 100k messages scrolls smoothly.
 *
 * Chat-specific behaviour:
 * - it sticks to the bottom while the reader is at the bottom (new messages scroll into view);
 * - otherwise it keeps the first visible item where it is on screen when items are added above
 *   (history on scroll-up) or heights change, so nothing jumps;
 * - it asks for older items when the reader nears the top.
 */
import { type ReactNode, useCallback, useLayoutEffect, useRef, useState } from "react";
import { lowerBound } from "./messageStore.js";

const ESTIMATE = 44;
const OVERSCAN_PX = 800;
const BOTTOM_SLACK = 48;
const TOP_TRIGGER_PX = 600;

export interface VirtualListProps<T> {
  items: readonly T[];
  itemKey: (item: T) => string;
  renderItem: (item: T, index: number) => ReactNode;
  onReachTop?: (() => void) | undefined;
  onAtBottomChange?: (atBottom: boolean) => void;
  /** Changing this scrolls to the bottom (a new conversation, "jump to latest", sending). */
  bottomSignal?: unknown;
  header?: ReactNode;
  label: string;
}

export function VirtualList<T>(props: VirtualListProps<T>) {
  const { items, itemKey, renderItem, onReachTop, onAtBottomChange, bottomSignal, header, label } = props;
  const scroller = useRef<HTMLDivElement>(null);
  const heights = useRef(new Map<string, number>());
  const atBottom = useRef(true);
  const anchor = useRef<{ key: string; delta: number } | undefined>(undefined);
  const [viewport, setViewport] = useState({ top: 0, height: 600 });
  const [, setMeasured] = useState(0);
  const headerRef = useRef<HTMLDivElement>(null);
  const headerHeight = headerRef.current?.offsetHeight ?? 0;

  // Prefix sums of heights: offsets[i] is the top of item i, offsets[n] the total.
  // A short conversation sits at the bottom, above the composer, as chats do.
  const offsets = new Array<number>(items.length + 1);
  offsets[0] = 0;
  for (let i = 0; i < items.length; i++) {
    offsets[i + 1] = offsets[i]! + (heights.current.get(itemKey(items[i]!)) ?? ESTIMATE);
  }
  const pad = Math.max(0, viewport.height - headerHeight - offsets[items.length]!);
  for (let i = 0; i <= items.length; i++) offsets[i] = offsets[i]! + pad + headerHeight;
  const total = offsets[items.length]!;
  const first = Math.max(0, lowerBound(offsets, viewport.top - OVERSCAN_PX) - 1);
  const last = Math.min(items.length, lowerBound(offsets, viewport.top + viewport.height + OVERSCAN_PX) + 1);

  const rememberAnchor = useCallback(
    (el: HTMLDivElement) => {
      const top = el.scrollTop;
      const i = Math.max(0, lowerBound(offsets, top + 1) - 1);
      const item = items[i];
      anchor.current = item ? { key: itemKey(item), delta: offsets[i]! - top } : undefined;
    },
    [items, itemKey, offsets],
  );

  const onScroll = () => {
    const el = scroller.current;
    if (!el) return;
    const bottom = el.scrollHeight - el.scrollTop - el.clientHeight < BOTTOM_SLACK;
    if (bottom !== atBottom.current) {
      atBottom.current = bottom;
      onAtBottomChange?.(bottom);
    }
    rememberAnchor(el);
    setViewport({ top: el.scrollTop, height: el.clientHeight });
    if (el.scrollTop < TOP_TRIGGER_PX) onReachTop?.();
  };

  // After every render: measure what is on screen, then put the scroll position back in place.
  useLayoutEffect(() => {
    const el = scroller.current;
    if (!el) return;
    let changed = false;
    for (const node of el.querySelectorAll<HTMLElement>("[data-vkey]")) {
      const key = node.dataset.vkey!;
      const h = node.offsetHeight;
      if (h > 0 && heights.current.get(key) !== h) {
        heights.current.set(key, h);
        changed = true;
      }
    }
    if (changed) {
      setMeasured((n) => n + 1);
      return;
    }
    if (atBottom.current) {
      const target = el.scrollHeight - el.clientHeight;
      if (Math.abs(el.scrollTop - target) > 1) el.scrollTop = target;
    } else if (anchor.current) {
      const i = items.findIndex((it) => itemKey(it) === anchor.current!.key);
      if (i >= 0) {
        const target = offsets[i]! - anchor.current.delta;
        if (Math.abs(el.scrollTop - target) > 1) el.scrollTop = target;
      }
    }
    if (el.clientHeight !== viewport.height || Math.abs(el.scrollTop - viewport.top) > 1) {
      setViewport({ top: el.scrollTop, height: el.clientHeight });
    }
  });

  // A new conversation or "jump to latest": to the bottom.
  // biome-ignore lint/correctness/useExhaustiveDependencies: runs when the signal changes.
  useLayoutEffect(() => {
    atBottom.current = true;
    onAtBottomChange?.(true);
    const el = scroller.current;
    if (el) el.scrollTop = el.scrollHeight;
  }, [bottomSignal]);

  // The viewport's height changes with the window (and the phone's keyboard).
  useLayoutEffect(() => {
    const el = scroller.current;
    if (!el || typeof ResizeObserver === "undefined") return;
    const ro = new ResizeObserver(() => {
      if (atBottom.current) el.scrollTop = el.scrollHeight;
      setViewport({ top: el.scrollTop, height: el.clientHeight });
    });
    ro.observe(el);
    return () => ro.disconnect();
  }, []);

  // A short list that does not fill the screen cannot be scrolled up: ask for older ones now,
  // once per length of the list (an answer that adds nothing must not ask again at once).
  const askedAt = useRef(-1);
  useLayoutEffect(() => {
    const el = scroller.current;
    if (!el || askedAt.current === items.length) return;
    if (el.scrollHeight <= el.clientHeight + TOP_TRIGGER_PX) {
      askedAt.current = items.length;
      onReachTop?.();
    }
  });

  const rendered: ReactNode[] = [];
  for (let i = first; i < last; i++) {
    const item = items[i]!;
    const key = itemKey(item);
    rendered.push(
      <div key={key} data-vkey={key} className="vitem" style={{ transform: `translateY(${offsets[i]}px)` }}>
        {renderItem(item, i)}
      </div>,
    );
  }

  return (
    <div
      ref={scroller}
      className="vlist"
      onScroll={onScroll}
      role="log"
      aria-label={label}
      // Scrolling a virtualized list adds old messages to the DOM: not news. New ones are
      // announced by MessageList's own live region.
      aria-live="off"
      // biome-ignore lint/a11y/noNoninteractiveTabindex: a scrollable region must be reachable by keyboard to scroll it.
      tabIndex={0}
    >
      <div className="vspacer" style={{ height: total }}>
        <div ref={headerRef} className="vheader" style={{ transform: `translateY(${pad}px)` }}>
          {header}
        </div>
        {rendered}
      </div>
    </div>
  );
}
