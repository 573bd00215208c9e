/** A round badge with a user's initials, in a colour that is always the same for that name. */
export function Avatar({ name, size = 36, online }: { name: string; size?: number; online?: boolean }) {
  let hash = 0;
  for (const ch of name) hash = (hash * 31 + ch.charCodeAt(0)) >>> 0;
  const hue = hash % 360;
  const initials = name.slice(0, 2).toUpperCase();
  return (
    <span
      className="avatar"
      aria-hidden="true"
      style={{ width: size, height: size, fontSize: size * 0.4, background: `hsl(${hue} 55% 45%)` }}
    >
      {initials}
      {online !== undefined && <span className={`dot ${online ? "on" : "off"}`} />}
    </span>
  );
}
