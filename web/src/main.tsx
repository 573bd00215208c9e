/**
 * The entry: who is signing in (`?user=` in dev auth, `?token=` in jwt auth, or the sign-in form),
 * then at `/admin` the operator's page, and elsewhere this tab's clientId and one Chat for the tab,
 * given to the components through ChatContext.
 */
import { StrictMode, useEffect, useState } from "react";
import { createRoot } from "react-dom/client";
import { App } from "./App.js";
import { AdminPage } from "./admin/AdminPage.js";
import { Chat } from "./chat.js";
import { ChatContext } from "./hooks.js";
import { SignIn } from "./SignIn.js";
import { claimClientId, type Identity, readIdentity, saveIdentity, signOut } from "./session.js";
import "./styles.css";

function Root() {
  const [identity, setIdentity] = useState<Identity | undefined>(readIdentity);
  const [chat, setChat] = useState<Chat | undefined>();

  const admin = location.pathname === "/admin" || location.pathname.startsWith("/admin/");

  useEffect(() => {
    if (!identity || admin) return;
    let cancelled = false;
    let created: Chat | undefined;
    void claimClientId().then((clientId) => {
      if (cancelled) return;
      created = new Chat(identity, clientId);
      created.start();
      created.openFromLocation();
      setChat(created);
    });
    return () => {
      cancelled = true;
      void created?.close();
      setChat(undefined);
    };
  }, [identity, admin]);

  if (!identity) {
    return (
      <SignIn
        onSignIn={(id) => {
          saveIdentity(id);
          setIdentity(id);
        }}
      />
    );
  }
  const leave = () => {
    signOut();
    setIdentity(undefined);
  };
  if (admin) return <AdminPage identity={identity} onSignOut={leave} />;
  if (!chat) {
    return (
      <div className="splash" aria-busy="true">
        Connecting…
      </div>
    );
  }
  return (
    <ChatContext.Provider value={chat}>
      <App onSignOut={leave} />
    </ChatContext.Provider>
  );
}

createRoot(document.getElementById("root")!).render(
  <StrictMode>
    <Root />
  </StrictMode>,
);
