/** Small inline icons (no icon font, no emoji: both depend on what the system has installed). */

/** A 24x24 line drawing in the text colour, `size` pixels wide. */
function StrokeIcon({ d, size = 18 }: { d: string; size?: number }) {
  return (
    <svg width={size} height={size} viewBox="0 0 24 24" focusable={false} aria-hidden="true">
      <path fill="none" stroke="currentColor" strokeWidth="2" strokeLinecap="round" strokeLinejoin="round" d={d} />
    </svg>
  );
}

export function MegaphoneIcon() {
  return (
    <StrokeIcon d="M3 11v3a1 1 0 0 0 1 1h2l4 4V6L6 10H4a1 1 0 0 0-1 1zm11-4.5a6 6 0 0 1 0 11M17 4a9 9 0 0 1 0 16" />
  );
}

export function PeopleIcon() {
  return (
    <StrokeIcon d="M16 21v-2a4 4 0 0 0-4-4H6a4 4 0 0 0-4 4v2M9 11a4 4 0 1 0 0-8 4 4 0 0 0 0 8zm13 10v-2a4 4 0 0 0-3-3.87M16 3.13a4 4 0 0 1 0 7.75" />
  );
}

export function HashIcon() {
  return <StrokeIcon size={16} d="M4 9h16M4 15h16M10 3 8 21M16 3l-2 18" />;
}
