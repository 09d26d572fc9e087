// The WebSocket to the gateway: one JSON object per frame, requests matched
// to their answers by `id`/`reply_to`, and reconnection with exponential
// backoff, for as long as the page is open, when the network or the server
// drops. It knows nothing of chats: what to do after (re)connecting is the
// caller's `onOpen`.

const FIRST_DELAY_MS = 500;
const MAX_DELAY_MS = 15000;
const REQUEST_TIMEOUT_MS = 30000;

/** Why a request got no answer: the connection, not the server, failed. */
export class ConnectionLost extends Error {
  constructor(message) {
    super(message);
    this.code = "connection_lost";
  }
}

/** An `error` answer from the server, keeping its code and message. */
export class ServerError extends Error {
  constructor(reply) {
    super(reply.message || reply.code || "the server reported an error");
    this.code = reply.code;
    this.reply = reply;
  }
}

/**
 * A self-healing connection. `onMessage(msg)` gets every server message
 * except error answers to our own requests (those reject the request's
 * promise instead); `onOpen()` runs on each (re)connect; `onStatus(state,
 * delay)` reports "connecting", "open", and "waiting" (with the delay in ms).
 * `attempt` counts the failed attempts since the server last greeted us.
 */
export class Connection {
  constructor(url, { onMessage, onOpen, onStatus }) {
    this.url = url;
    this.onMessage = onMessage;
    this.onOpen = onOpen;
    this.onStatus = onStatus;
    this.ws = null;
    this.attempt = 0;
    this.timer = null;
    this.nextId = 1;
    this.pending = new Map();
  }

  /** Connect now, and again whenever the network comes back. */
  start() {
    window.addEventListener("online", () => this.retryNow());
    this.connect();
  }

  /** Whether frames can be sent right now. */
  get isOpen() {
    return this.ws !== null && this.ws.readyState === WebSocket.OPEN;
  }

  /** The server greeted us: the next drop starts the backoff from scratch. */
  markHealthy() {
    this.attempt = 0;
  }

  /** Skip the rest of the backoff delay (the person asked, or we came online). */
  retryNow() {
    if (this.ws !== null) return;
    clearTimeout(this.timer);
    this.connect();
  }

  connect() {
    this.timer = null;
    this.onStatus("connecting");
    let ws;
    try {
      ws = new WebSocket(this.url);
    } catch {
      this.scheduleRetry();
      return;
    }
    this.ws = ws;
    ws.addEventListener("open", () => {
      if (this.ws !== ws) return;
      this.onStatus("open");
      this.onOpen();
    });
    ws.addEventListener("message", (event) => {
      if (this.ws !== ws || typeof event.data !== "string") return;
      let msg;
      try {
        msg = JSON.parse(event.data);
      } catch {
        return; // not ours to show: the server only sends JSON objects
      }
      if (msg && typeof msg === "object" && typeof msg.type === "string") this.route(msg);
    });
    // "error" is always followed by "close"; the retry is scheduled there.
    ws.addEventListener("close", () => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.failPending();
      this.scheduleRetry();
    });
  }

  scheduleRetry() {
    const base = Math.min(MAX_DELAY_MS, FIRST_DELAY_MS * 2 ** this.attempt);
    this.attempt++;
    // Jitter keeps many tabs from reconnecting in lockstep after a restart; it
    // only shortens the wait, so the cap holds: never more than 15 s between tries.
    const delay = Math.round(base * (0.8 + Math.random() * 0.2));
    this.onStatus("waiting", delay);
    this.timer = setTimeout(() => this.connect(), delay);
  }

  route(msg) {
    const waiter = msg.reply_to != null ? this.pending.get(msg.reply_to) : undefined;
    if (waiter) {
      this.pending.delete(msg.reply_to);
      clearTimeout(waiter.timer);
      if (msg.type === "error") {
        waiter.reject(new ServerError(msg));
        return;
      }
      waiter.resolve(msg);
    }
    this.onMessage(msg);
  }

  failPending() {
    const lost = new ConnectionLost("the connection dropped before the server answered");
    for (const waiter of this.pending.values()) {
      clearTimeout(waiter.timer);
      waiter.reject(lost);
    }
    this.pending.clear();
  }

  /** Send a message without waiting for its answer; false when offline. */
  send(type, fields = {}) {
    if (!this.isOpen) return false;
    this.ws.send(JSON.stringify({ ...fields, type, id: `c${this.nextId++}` }));
    return true;
  }

  /**
   * Send a message and resolve with its direct answer. Rejects with
   * ServerError for an `error` answer, ConnectionLost when offline or when the
   * connection drops (or stays silent) before the answer.
   */
  request(type, fields = {}) {
    if (!this.isOpen) {
      return Promise.reject(new ConnectionLost("not connected to the server right now"));
    }
    const id = `c${this.nextId++}`;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new ConnectionLost("the server did not answer in time"));
      }, REQUEST_TIMEOUT_MS);
      this.pending.set(id, { resolve, reject, timer });
      this.ws.send(JSON.stringify({ ...fields, type, id }));
    });
  }
}
