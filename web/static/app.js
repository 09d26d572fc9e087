// The page's entry point: connects to the gateway, routes each server
// message to the chat model and the views, and turns the person's clicks
// into protocol commands. See docs/client.md for what each panel does.

import { Branches } from "./branches.js";
import { CardView, GreetingPicker } from "./card.js";
import { CastPanel } from "./cast.js";
import { OpenChat } from "./chat.js";
import { Composer } from "./composer.js";
import { Importer, Library } from "./import.js";
import { SeatPicker } from "./seats.js";
import { Connection, ConnectionLost } from "./connection.js";
import { byTestId, h } from "./dom.js";
import { LorePanel } from "./lore.js";
import { StoryPanels } from "./panels.js";
import { SettingsPanel } from "./settings.js";
import { Sidebar, chatTitle } from "./sidebar.js";
import { Timeline } from "./timeline.js";

const PROTOCOL = 1;
const MAX_TOASTS = 3;
// A gap in `seq` first asks the server to replay what was missed; if the
// gap is still open this long after, a fresh chat_state is asked for.
const GAP_ESCALATE_MS = 2500;

/** Chat messages: they carry `chat_id`, and all but token/chat_state a `seq`. */
const CHAT_TYPES = new Set([
  "chat_state",
  "user_turn",
  "beat_started",
  "token",
  "beat_complete",
  "edge_update",
  "memory",
  "world_event",
  "scene_closed",
  "turn_settled",
  "presence",
  "chat_note",
  "chat_lorebooks",
  "author_note",
  "seat_taken",
  "turn_queued",
]);

const state = {
  you: null, // Entity
  server: "",
  bots: new Map(), // id → Bot
  personas: new Map(), // id → Entity: `you` and the other people who can take a seat
  chats: [], // Chat
  chat: null, // OpenChat
  online: false, // greeted by the server
};

const token = new URLSearchParams(window.location.search).get("token") ?? "";
const socketUrl =
  `${window.location.protocol === "https:" ? "wss:" : "ws:"}//${window.location.host}` +
  `/ws?token=${encodeURIComponent(token)}`;

// --- names --------------------------------------------------------------------

/** A speaker's name as the person knows it: bots by name, the user by theirs. */
function names(id) {
  if (id === "you") return state.you?.name || "You";
  return state.bots.get(id)?.name ?? state.personas.get(id)?.name ?? "Someone";
}

// --- errors and status ------------------------------------------------------------

const toasts = document.getElementById("errors");

/** Show an error to the person until they dismiss it. */
function showError(error) {
  const message = error?.message || "Something went wrong.";
  const code = error?.code ?? "client";
  const last = toasts.lastElementChild;
  if (last && last.dataset.message === message) return; // the same news twice is noise
  const toast = h(
    "div",
    { class: "toast", role: "alert", testid: "error", data: { code, message } },
    h("span", { class: "toast-text" }, message),
    h(
      "button",
      {
        type: "button",
        class: "quiet toast-close",
        testid: "error-dismiss",
        "aria-label": "Dismiss",
        onclick: () => toast.remove(),
      },
      "\u00d7",
    ),
  );
  toasts.append(toast);
  while (toasts.children.length > MAX_TOASTS) toasts.firstElementChild.remove();
}

const status = byTestId("status");
const statusText = status.querySelector(".status-text");
let countdown = null;

/**
 * Show the connection's state. Once the server has greeted this page, a drop
 * means the server stopped answering (it was stopped, or its machine went
 * away): say so, and keep counting the tries so the person sees them go on.
 */
function setStatus(kind, delay = 0) {
  clearInterval(countdown);
  countdown = null;
  byTestId("status-retry").hidden = kind !== "offline";
  status.dataset.state = kind;
  const tries = connection.attempt;
  status.dataset.attempts = String(tries);
  const trouble = everOnline ? "Server stopped answering" : "Cannot reach the server";
  if (kind === "online") statusText.textContent = "Connected";
  else if (kind === "connecting") {
    statusText.textContent = tries > 0 ? `${trouble} \u00b7 retry ${tries}\u2026` : "Connecting\u2026";
  } else {
    const until = Date.now() + delay;
    const tick = () => {
      const seconds = Math.max(0, Math.ceil((until - Date.now()) / 1000));
      statusText.textContent =
        `${trouble} \u00b7 retry ${tries}` + (seconds > 0 ? ` in ${seconds}s` : "\u2026");
    };
    tick();
    countdown = setInterval(tick, 1000);
  }
  status.title = state.server ? `troupe server ${state.server}` : "";
}

// --- connection --------------------------------------------------------------------

// After this many failed attempts in a row, say so in a banner too: after a
// drop, what happened; before the first greeting, what usually causes it.
const HINT_AFTER_FAILURES = 3;
let failures = 0;
let everOnline = false; // the server greeted this page at least once

const connection = new Connection(socketUrl, {
  onMessage: route,
  onOpen: greet,
  onStatus(kind, delay) {
    if (kind === "open") return; // "online" once the server greets us
    state.online = false;
    setStatus(kind === "waiting" ? "offline" : "connecting", delay);
    composer.update();
    if (kind === "waiting" && ++failures === HINT_AFTER_FAILURES) {
      showError(
        new ConnectionLost(
          everOnline
            ? "The troupe server stopped answering. This page keeps trying to reconnect " +
                "(at least every 15 s) and carries on where it left off once the server is back."
            : "Cannot reach the troupe server. Check that `troupe serve` is running and that " +
                "this page's address is the one it printed (with its ?token=\u2026). " +
                "This page keeps trying.",
        ),
      );
    }
  },
});

/** Send a command and wait for its answer (errors reject, as ServerError). */
function request(type, fields = {}) {
  return connection.request(type, fields).catch((error) => {
    // `busy` means a turn is in flight that we did not know of (another tab,
    // or we joined late): hold Send until it settles.
    if (error.code === "busy" && state.chat) {
      state.chat.markActive();
      composer.update();
    }
    throw error;
  });
}

/** Each (re)connect starts with hello; the welcome (see DIRECT) does the rest. */
function greet() {
  request("hello", { protocol: PROTOCOL }).catch((error) => {
    if (!(error instanceof ConnectionLost)) showError(error);
  });
}

function welcomed(welcome) {
  connection.markHealthy();
  failures = 0;
  everOnline = true;
  // News of the lost connection is stale now.
  for (const toast of toasts.querySelectorAll('[data-code="connection_lost"]')) toast.remove();
  state.online = true;
  state.you = welcome.you ?? state.you;
  state.server = welcome.server ?? "";
  setStatus("online");
  refreshNames();
  connection.send("list_bots");
  connection.send("list_chats");
  lorePanel.refreshBooks();
  connection.send("list_personas");
  seats.reseat(); // a new connection sits as `you` until it takes its seat again
  const chat = state.chat;
  if (chat) {
    // Resume: the server replays what we missed since the last seq we saw,
    // or sends a fresh chat_state when it no longer can.
    chat.freshOpen = true;
    subscribe(chat, chat.lastSeq);
  } else {
    const wanted = chatFromAddress();
    if (wanted) openChat(wanted);
  }
  composer.update();
}

function subscribe(chat, afterSeq = null) {
  const fields = afterSeq === null ? { chat_id: chat.id } : { chat_id: chat.id, after_seq: afterSeq };
  connection.send("open_chat", fields);
}

// --- routing ---------------------------------------------------------------------

function route(msg) {
  // `memory` is both a chat message (with seq) and the answer to pin_memory.
  // A numbered message of a type this page does not know still counts in
  // the chat's seq, or the next one would look like a gap.
  const numbered = typeof msg.seq === "number" && msg.type !== "error";
  const isChatMessage =
    msg.chat_id != null && (numbered || (CHAT_TYPES.has(msg.type) && msg.type !== "memory"));
  if (isChatMessage) onChatMessage(msg);
  else DIRECT[msg.type]?.(msg);
}

const DIRECT = {
  welcome: welcomed,
  you(msg) {
    state.you = msg.you;
    refreshNames();
  },
  bots(msg) {
    state.bots = new Map((msg.bots ?? []).map((bot) => [bot.id, bot]));
    refreshNames();
  },
  bot(msg) {
    state.bots.set(msg.bot.id, msg.bot);
    refreshNames();
  },
  lorebook(msg) {
    // An import, here or on another page: the lore panel lists the new book.
    if (msg.lorebook) lorePanel.applyBook(msg.lorebook);
  },
  chats(msg) {
    state.chats = msg.chats ?? [];
    sidebar.renderChats();
    const open = state.chat && state.chats.find((chat) => chat.id === state.chat.id);
    if (open && Array.isArray(open.cast)) DIRECT.chat({ chat: open });
    renderHeader();
  },
  chat(msg) {
    state.chats = [...state.chats.filter((chat) => chat.id !== msg.chat.id), msg.chat];
    sidebar.renderChats();
    const open = state.chat;
    if (open?.id === msg.chat.id) {
      // A cast change: the cast panel, the matrix's rows and the memories follow.
      const before = open.botIds().join(" ");
      open.applyInfo(msg.chat);
      renderCast();
      panels.render(open);
      renderHeader();
      if (open.botIds().join(" ") !== before) fetchMemories(open);
    }
  },
  memory(msg) {
    if (state.chat?.applyMemory(msg.memory)) panels.renderMemories();
  },
  personas(msg) {
    state.personas = new Map((msg.personas ?? []).map((persona) => [persona.id, persona]));
    refreshNames();
  },
  persona(msg) {
    state.personas.set(msg.persona.id, msg.persona);
    refreshNames();
  },
  rewound(msg) {
    if (state.chat?.id === msg.chat_id) {
      state.chat.rewound(msg.event_id);
      panels.renderWorld();
    }
  },
  error(msg) {
    const chat = state.chat;
    if (msg.code === "busy" && chat && (msg.chat_id == null || msg.chat_id === chat.id)) {
      chat.markActive();
      composer.update();
    }
    showError(msg);
  },
};

function onChatMessage(msg) {
  const chat = state.chat;
  if (!chat || msg.chat_id !== chat.id) return; // a chat we have since left
  if (msg.type === "chat_state") return applyState(chat, msg);
  if (msg.type === "token") return applyToken(chat, msg);
  const verdict = chat.gate(msg.seq);
  if (verdict === "duplicate") return;
  if (verdict === "gap") return onGap(chat);
  chat.pendingGap = null;
  chat.freshOpen = false;
  APPLY[msg.type]?.(chat, msg);
  chat.advance(msg.seq);
}

const APPLY = {
  user_turn(chat, msg) {
    const turn = chat.addUserTurn(msg);
    if (turn) timeline.appendTurn(turn);
    composer.update();
  },
  beat_started(chat, msg) {
    // A `continue` goes on in the latest beat: its text so far starts the live one.
    const beat = branches.resume(chat, msg) ?? chat.startBeat(msg);
    if (beat) timeline.startBeat(beat);
    composer.update();
  },
  beat_complete(chat, msg) {
    const turn = chat.completeBeat(msg);
    timeline.completeBeat(msg.beat_id, turn);
    composer.update();
  },
  edge_update(chat, msg) {
    chat.applyEdge(msg);
    panels.renderEdges();
  },
  memory(chat, msg) {
    chat.applyMemory(msg.memory);
    panels.renderMemories();
  },
  world_event(chat, msg) {
    chat.applyWorldEvent(msg);
    panels.renderWorld();
  },
  scene_closed(chat, msg) {
    chat.sceneClosed(msg);
    panels.renderScene();
    timeline.sceneBreak(chat.closedScene);
  },
  presence(chat, msg) {
    chat.applyPresence(msg);
    renderCast();
  },
  chat_note(_chat, msg) {
    // After every cast, presence or muting change the chat itself follows, to
    // every page watching it: the same news as the answer to a cast command.
    DIRECT.chat(msg);
  },
  chat_lorebooks(_chat, msg) {
    lorePanel.applyLorebooks(msg);
  },
  author_note(_chat, msg) {
    lorePanel.applyNote(msg);
  },
  seat_taken(chat, msg) {
    state.personas.set(msg.persona.id, msg.persona);
    chat.applySeat(msg);
    refreshNames();
  },
  turn_queued(chat, msg) {
    chat.queue = msg.queue ?? [];
    seats.renderQueue();
    composer.update();
  },
  turn_settled(chat, msg) {
    chat.settled(msg);
    composer.update();
    branches.refresh(); // a turn on a branch makes it longer
    // Every beat completes before its turn settles; one still streaming
    // means we missed its end.
    if (chat.live.size > 0) subscribe(chat, null);
  },
};

function applyState(chat, msg) {
  const jump = chat.freshOpen;
  chat.applyState(msg);
  chat.pendingGap = null;
  chat.tokenResyncs = new Set();
  timeline.render(chat, { jump });
  if (timeline.nearTop()) loadOlder(); // a page too short to scroll
  panels.render(chat);
  castPanel.render(chat);
  lorePanel.applyState(msg);
  seats.render();
  settingsPanel.render(chat);
  branches.refresh(); // a fork or a switch comes as a fresh chat_state
  renderHeader();
  composer.update();
  fetchMemories(chat);
}

function applyToken(chat, msg) {
  const applied = chat.token(msg);
  if (!applied) return;
  const { beat, added, created, gap } = applied;
  if (created) timeline.startBeat(beat);
  else timeline.appendToBeat(beat, added);
  if (gap) {
    // Text went missing: ask once per beat for what we missed; the final
    // text replaces the gap marker when the beat completes anyway.
    chat.tokenResyncs ??= new Set();
    if (!chat.tokenResyncs.has(beat.beatId)) {
      chat.tokenResyncs.add(beat.beatId);
      subscribe(chat, chat.lastSeq);
    }
  }
}

function onGap(chat) {
  const now = Date.now();
  const pending = chat.pendingGap;
  if (!pending) {
    chat.pendingGap = { at: now, full: false };
    subscribe(chat, chat.lastSeq);
    setTimeout(() => escalateGap(chat), GAP_ESCALATE_MS);
  } else if (now - pending.at >= GAP_ESCALATE_MS) {
    escalateGap(chat);
  }
}

/** The replay did not close the gap: start over from a fresh chat_state. */
function escalateGap(chat) {
  const pending = chat.pendingGap;
  if (state.chat !== chat || !pending || Date.now() - pending.at < GAP_ESCALATE_MS) return;
  chat.pendingGap = { at: Date.now(), full: true };
  subscribe(chat, null);
  setTimeout(() => escalateGap(chat), GAP_ESCALATE_MS * 2);
}

async function fetchMemories(chat) {
  for (const botId of chat.botIds()) {
    try {
      const answer = await request("list_memories", { bot_id: botId, chat_id: chat.id });
      if (state.chat !== chat) return;
      chat.replaceMemories(botId, answer.memories ?? []);
      panels.renderMemories();
    } catch (error) {
      if (!(error instanceof ConnectionLost)) showError(error);
      return;
    }
  }
}

// --- commands ------------------------------------------------------------------------

/** Switch the timeline to a chat and subscribe to it. */
function openChat(chatId) {
  if (state.chat?.id === chatId) return;
  if (state.chat) connection.send("close_chat", { chat_id: state.chat.id });
  const chat = new OpenChat(chatId);
  chat.info = state.chats.find((c) => c.id === chatId) ?? null;
  state.chat = chat;
  window.history.replaceState(null, "", `#chat=${encodeURIComponent(chatId)}`);
  timeline.render(chat);
  panels.render(chat);
  settingsPanel.render(chat);
  castPanel.render(chat);
  lorePanel.render();
  seats.render();
  branches.reset();
  sidebar.renderChats();
  renderHeader();
  composer.update();
  composer.closeRegenerate();
  subscribe(chat);
  composer.focus();
}

function chatFromAddress() {
  const match = /(?:^#|&)chat=([^&]+)/.exec(window.location.hash);
  return match ? decodeURIComponent(match[1]) : null;
}

/** Turns asked for at a time as the person scrolls up (the server allows 1..200). */
const OLDER_PAGE = 100;

/** Fetch the turns before the first one shown; one request at a time. */
async function loadOlder() {
  const chat = state.chat;
  const before = chat?.olderBefore();
  if (before == null || chat.loadingOlder) return;
  chat.loadingOlder = true;
  timeline.showOlder("loading");
  let added = null;
  try {
    const answer = await request("load_older", { chat_id: chat.id, before_event_id: before, limit: OLDER_PAGE });
    if (state.chat !== chat) return;
    added = chat.prependTurns(answer);
    if (added) timeline.prependTurns(added, chat);
  } catch (error) {
    if (!(error instanceof ConnectionLost)) showError(error);
  } finally {
    chat.loadingOlder = false;
    if (state.chat === chat) timeline.showOlder("idle");
  }
  // Still at the top (a tall screen, or a fast fling): the next page follows,
  // as long as each page brings something.
  if (added?.length && state.chat === chat && timeline.nearTop()) loadOlder();
}

async function sendTurn(prose, replyAs = "") {
  const chat = state.chat;
  const fields = { chat_id: chat.id, prose };
  if (replyAs) fields.reply_as = replyAs;
  // A turn in flight (ours or someone else's at the table): wait in the queue.
  if (chat.activeTurn !== null) fields.queue = true;
  const answer = await request("send_turn", fields);
  if (answer.type === "accepted") chat.markActive(answer.user_turn_id);
  composer.update();
}

async function regenerate(target, prose) {
  const chat = state.chat;
  const fields = { chat_id: chat.id, event_id: target.event_id };
  if (prose !== null) fields.prose = prose;
  const answer = await request("regenerate", fields);
  if (state.chat !== chat) return;
  // The replaced turn leaves the timeline now; the server's fresh
  // chat_state after the new beat confirms it.
  chat.dropForRegenerate(target, prose !== null);
  chat.markActive(answer.user_turn_id);
  timeline.render(chat);
  composer.update();
}

// --- views ---------------------------------------------------------------------------

function renderHeader() {
  const info = state.chat?.info;
  const title = byTestId("chat-title");
  title.textContent = state.chat ? (info ? chatTitle(info, (id) => names(id)) : "Opening\u2026") : "troupe";
  document.title = info ? `${title.textContent} \u00b7 troupe` : "troupe";
  library.chatLinks(state.chat?.id ?? null);
}

/** The cast panel and the composer's "reply as" both show who is present. */
function renderCast() {
  castPanel.render(state.chat);
  composer.update();
}

function refreshNames() {
  library.refresh();
  sidebar.render();
  seats.render();
  timeline.renameSpeakers();
  panels.render(state.chat);
  castPanel.render(state.chat);
  composer.update();
  renderHeader();
}

const library = new Library({ token, bots: () => state.bots });
library.watch(document.body);

const timeline = new Timeline(byTestId("timeline"), {
  names,
  showError,
  previewRewind: (turn) => request("rewind_preview", { chat_id: state.chat.id, event_id: turn.event_id }),
  rewind: (turn) => request("rewind", { chat_id: state.chat.id, event_id: turn.event_id }),
  loadOlder: () => loadOlder(),
  decorate: (turn, li) => branches.decorate(turn, li),
});

const branches = new Branches(byTestId("side"), byTestId("timeline"), {
  request,
  chat: () => state.chat,
  online: () => state.online,
  showError,
  accepted(answer) {
    // Regenerate, Edit or Continue took: a turn is in flight until it settles.
    if (!state.chat || answer?.chat_id !== state.chat.id) return;
    state.chat.markActive(answer.user_turn_id ?? true);
    composer.update();
  },
});

const panels = new StoryPanels(byTestId("side"), byTestId("scene"), {
  names,
  showError,
  pin: (memory, pinned) => request("pin_memory", { memory_id: memory.id, pinned }),
  planEvent: (title, description) =>
    request("create_world_event", { chat_id: state.chat.id, title, description }),
});

const castPanel = new CastPanel(byTestId("side"), {
  names,
  bots: () => state.bots,
  showError,
  command: (type, botId) => request(type, { chat_id: state.chat.id, bot_id: botId }),
  replyAs: () => composer.replyAsValue(),
  chooseReplyAs: (botId) => composer.chooseReplyAs(botId),
});

const settingsPanel = new SettingsPanel(byTestId("side"), {
  showError,
  save: (changes) => request("update_chat_settings", { chat_id: state.chat.id, ...changes }),
});

const sidebar = new Sidebar(byTestId("nav"), {
  state,
  request,
  openChat,
  showError,
  afterNavigate: closeDrawers,
  onEditBot: (botId) => library.botLinks(botId),
  hooks: {
    showCard: (bot) => cardView.show(bot),
    onHost: (host, group) => greetingPicker.show(host, group),
    chatFields: () => greetingPicker.fields(),
  },
});

const cardView = new CardView(byTestId("bot-form"), {
  request,
  token,
  showError,
  saved: (bot) => DIRECT.bot({ bot }),
});

const greetingPicker = new GreetingPicker(byTestId("new-chat-form"), { token, showError });

const lorePanel = new LorePanel(byTestId("side"), {
  request,
  chat: () => state.chat,
  showError,
});

const seats = new SeatPicker(byTestId("composer-area"), {
  chat: () => state.chat,
  personas: () => state.personas,
  request,
  showError,
  names,
  changed: () => composer.update(),
});

const composer = new Composer(byTestId("composer-area"), {
  chat: () => state.chat,
  online: () => state.online,
  sendTurn,
  cancel: () => request("cancel", { chat_id: state.chat.id }),
  regenerate,
  showError,
  names,
});
composer.onUpdate = () => branches.update(); // Continue follows Send
// The cast's "Reply as" buttons and the composer's picker show one choice.
composer.onReplyAs = () => castPanel.render(state.chat);

const importer = new Importer({
  token,
  showError,
  // What was made reaches this page as a broadcast too; a chat is opened at once.
  onImported(answer) {
    if (answer.kind === "chat") {
      DIRECT.chat({ chat: answer.chat });
      openChat(answer.chat.id);
    }
  },
});
importer.wire();

// --- small screens: the side panels live behind two toggles -----------------------------

function toggleDrawer(name) {
  const open = !document.body.classList.contains(`show-${name}`);
  closeDrawers();
  document.body.classList.toggle(`show-${name}`, open);
  byTestId(`toggle-${name}`).setAttribute("aria-expanded", String(open));
}

/** Close any open drawer; true when one was open. */
function closeDrawers() {
  let closed = false;
  for (const name of ["nav", "side"]) {
    if (document.body.classList.contains(`show-${name}`)) closed = true;
    document.body.classList.remove(`show-${name}`);
    byTestId(`toggle-${name}`).setAttribute("aria-expanded", "false");
  }
  return closed;
}

byTestId("toggle-nav").addEventListener("click", () => toggleDrawer("nav"));
byTestId("toggle-side").addEventListener("click", () => toggleDrawer("side"));
byTestId("status-retry").addEventListener("click", () => connection.retryNow());

// Esc stops the beat in flight; otherwise it closes whatever is open.
document.addEventListener("keydown", (event) => {
  if (event.key !== "Escape" || event.isComposing) return;
  if (composer.stop() || composer.closeRegenerate() || branches.closeEdit() || timeline.closeRewind() || closeDrawers()) {
    event.preventDefault();
  }
});

// --- start ---------------------------------------------------------------------------

timeline.render(null);
panels.render(null);
settingsPanel.render(null);
castPanel.render(null);
lorePanel.render();
seats.render();
branches.render();
sidebar.render();
renderHeader();
composer.update();
if (!token) {
  showError(new Error("This address has no ?token=\u2026 part: open the link that `troupe serve` printed."));
}
connection.start();
