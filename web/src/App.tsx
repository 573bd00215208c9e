/** The chat's layout: the sidebar and the open conversation side by side, or one at a time on a phone. */
import { useEffect, useState } from "react";
import { ChatPane } from "./ChatPane.js";
import { useChat, useChatState, useNarrow } from "./hooks.js";
import { Sidebar } from "./Sidebar.js";

export function App({ onSignOut }: { onSignOut: () => void }) {
  const chat = useChat();
  const state = useChatState();
  const narrow = useNarrow();
  const [showNav, setShowNav] = useState(false);

  useEffect(() => {
    const onPop = () => chat.openFromLocation();
    const onVisible = () => chat.markRead();
    window.addEventListener("popstate", onPop);
    document.addEventListener("visibilitychange", onVisible);
    return () => {
      window.removeEventListener("popstate", onPop);
      document.removeEventListener("visibilitychange", onVisible);
    };
  }, [chat]);
  // biome-ignore lint/correctness/useExhaustiveDependencies: remember the conversation whenever it changes.
  useEffect(() => chat.rememberLast(), [chat, state.active]);

  const total = [...state.unread.values()].reduce((a, b) => a + b, 0);
  useEffect(() => {
    const base = document.title.replace(/^\(\d+\) /, "");
    document.title = total > 0 ? `(${total}) ${base}` : base;
  });

  const navVisible = !narrow || showNav || !state.active;
  return (
    <div className={`app${narrow ? " narrow" : ""}`}>
      {state.notice && (
        <div className="notice" role="alert">
          {state.notice}
          <button type="button" className="small-button" onClick={onSignOut}>
            Sign in again
          </button>
        </div>
      )}
      {navVisible && (
        <div className="nav-wrap">
          <Sidebar state={state} onNavigate={() => setShowNav(false)} />
          <button type="button" className="sign-out" onClick={onSignOut}>
            Sign out
          </button>
        </div>
      )}
      {state.active && (!narrow || !showNav) && (
        <ChatPane state={state} conversation={state.active} narrow={narrow} onBack={() => setShowNav(true)} />
      )}
    </div>
  );
}
