/** React's view of a Chat: its state, and the message list of a conversation. */
import { createContext, useContext, useEffect, useState, useSyncExternalStore } from "react";
import type { Chat, ChatState } from "./chat.js";
import type { Conversation } from "./conversation.js";
import type { ListItem } from "./messageStore.js";

export const ChatContext = createContext<Chat | undefined>(undefined);

export function useChat(): Chat {
  const chat = useContext(ChatContext);
  if (!chat) throw new Error("useChat outside ChatContext");
  return chat;
}

export function useChatState(): ChatState {
  const chat = useChat();
  return useSyncExternalStore(chat.subscribe, chat.getState);
}

/**
 * The items of a conversation. A burst of deliveries (50 messages after a reconnect) changes the
 * store once per message; the list re-renders at most once a frame.
 */
export function useConversationItems(c: Conversation | undefined): ListItem[] {
  const chat = useChat();
  const read = () => {
    if (!c) return [];
    if (c.kind === "dm") return chat.store.dmItems(chat.me, c.user);
    return chat.store.items(c.kind === "room" ? `room:${c.name}` : "broadcast");
  };
  const [items, setItems] = useState(read);
  // biome-ignore lint/correctness/useExhaustiveDependencies: `read` is rebuilt from `c` and `chat`.
  useEffect(() => {
    setItems(read());
    let frame = 0;
    const update = () => {
      if (frame) return;
      frame = requestAnimationFrame(() => {
        frame = 0;
        setItems(read());
      });
    };
    const off = chat.store.subscribe(update);
    return () => {
      off();
      if (frame) cancelAnimationFrame(frame);
    };
  }, [chat, c]);
  return items;
}

/** Whether the viewport is narrow (a phone): one pane at a time. */
export function useNarrow(): boolean {
  const query = "(max-width: 720px)";
  return useSyncExternalStore(
    (cb) => {
      const mq = matchMedia(query);
      mq.addEventListener("change", cb);
      return () => mq.removeEventListener("change", cb);
    },
    () => matchMedia(query).matches,
  );
}
