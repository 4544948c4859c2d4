// A Convex React app's frontend, as `npm create convex` makes one: a
// ConvexReactClient, a ConvexProvider and useQuery, here on `one-store serve`.
// It shows messages:list of the thread given in the page's query string.
import React from "react";
import { createRoot } from "react-dom/client";
import { ConvexProvider, ConvexReactClient, useQuery } from "convex/react";

const params = new URLSearchParams(window.location.search);
const convex = new ConvexReactClient(params.get("convex"));
// The test checks that the page it reads after a write is the page it loaded.
window.pageLoad = Math.random().toString(36).slice(2);

function Messages({ threadId }) {
  const messages = useQuery("messages:list", { threadId });
  if (messages === undefined) return <p id="status">loading</p>;
  return (
    <ul id="messages">
      {messages.map((m) => (
        <li key={m._id}>
          {m.role}: {m.content}
        </li>
      ))}
    </ul>
  );
}

createRoot(document.getElementById("root")).render(
  <ConvexProvider client={convex}>
    <Messages threadId={params.get("thread")} />
  </ConvexProvider>,
);
