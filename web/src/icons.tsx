/** Small inline icons (no icon font, no emoji: both depend on what the system has installed). */
const common = { width: 18, height: 18, viewBox: "0 0 24 24", focusable: false } as const;

export function MegaphoneIcon() {
  return (
    <svg {...common} aria-hidden="true">
      <path
        fill="none"
        stroke="currentColor"
        strokeWidth="2"
        strokeLinecap="round"
        strokeLinejoin="round"
        d="M3 11v3a1 1 0 0 0 1 1h2l4 4V6L6 10H4a1 1 0 0 0-1 1zm11-4.5a6 6 0 0 1 0 11M17 4a9 9 0 0 1 0 16"
      />
    </svg>
  );
}

export function PeopleIcon() {
  return (
    <svg {...common} aria-hidden="true">
      <path
        fill="none"
        stroke="currentColor"
        strokeWidth="2"
        strokeLinecap="round"
        strokeLinejoin="round"
        d="M16 21v-2a4 4 0 0 0-4-4H6a4 4 0 0 0-4 4v2M9 11a4 4 0 1 0 0-8 4 4 0 0 0 0 8zm13 10v-2a4 4 0 0 0-3-3.87M16 3.13a4 4 0 0 1 0 7.75"
      />
    </svg>
  );
}

export function HashIcon() {
  return (
    <svg {...common} aria-hidden="true" width={16} height={16}>
      <path
        fill="none"
        stroke="currentColor"
        strokeWidth="2"
        strokeLinecap="round"
        d="M4 9h16M4 15h16M10 3 8 21M16 3l-2 18"
      />
    </svg>
  );
}
