/** Sign-in: a name (dev auth) or a token (jwt auth). */
import { type FormEvent, useState } from "react";
import { NAME_RE } from "../../shared/topics.js";
import { type Identity, tokenSubject } from "./session.js";

export function SignIn({ onSignIn }: { onSignIn: (identity: Identity) => void }) {
  const [name, setName] = useState("");
  const [token, setToken] = useState("");
  const [useToken, setUseToken] = useState(false);
  const [error, setError] = useState("");

  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (useToken) {
      const t = token.trim();
      const sub = tokenSubject(t);
      if (!sub) return setError("That does not look like a JWT with a subject.");
      onSignIn({ user: sub, token: t });
    } else {
      const n = name.trim();
      if (!NAME_RE.test(n)) return setError("Use letters, digits, dot, dash or underscore (up to 64).");
      onSignIn({ user: n });
    }
  };

  return (
    <main className="signin">
      <form className="signin-card" onSubmit={submit}>
        <div className="logo" aria-hidden="true">
          H
        </div>
        <h1>Welcome to Herald</h1>
        <p className="muted">Realtime rooms and direct messages that never lose a word.</p>
        {useToken ? (
          <label>
            Access token
            <textarea value={token} onChange={(e) => setToken(e.target.value)} rows={3} spellCheck={false} />
          </label>
        ) : (
          <label>
            Your name
            <input
              value={name}
              onChange={(e) => setName(e.target.value)}
              autoComplete="username"
              autoCapitalize="off"
              spellCheck={false}
              // biome-ignore lint/a11y/noAutofocus: the only thing to do on this page.
              autoFocus
            />
          </label>
        )}
        {error && (
          <p className="form-error" role="alert">
            {error}
          </p>
        )}
        <button type="submit" className="primary">
          Sign in
        </button>
        <button type="button" className="link-button" onClick={() => setUseToken((v) => !v)}>
          {useToken ? "Sign in with a name instead" : "I have an access token"}
        </button>
      </form>
    </main>
  );
}
