// What the client knows about the open chat, and how each server message
// changes it. No DOM here: the views read this model and draw it.
//
// Ordering rules come from the protocol: `chat_state` replaces everything and
// says which `seq` it reflects; every later chat message carries the next
// `seq`; `token` messages carry an `offset` instead, measured in code points.

import { codePoints, dropCodePoints } from "./dom.js";

/** Marker shown where streamed text went missing; the final text replaces it. */
export const GAP_MARK = " \u2026 ";

/** A streamed beat that has not completed yet. */
class LiveBeat {
  constructor(beatId, speakerId, userTurnId, interjection, text = "") {
    this.beatId = beatId;
    this.speakerId = speakerId;
    this.userTurnId = userTurnId;
    this.interjection = interjection;
    this.text = text;
    // How far into the server's text we are, in code points. Equal to the
    // length of `text` unless a gap was bridged with GAP_MARK.
    this.end = codePoints(text);
  }
}

/** The state of one open chat. */
export class OpenChat {
  constructor(id) {
    this.id = id;
    this.info = null; // Chat
    this.lastSeq = null;
    this.turns = []; // Turn, in timeline order
    this.live = new Map(); // beat_id → LiveBeat
    this.edges = new Map(); // "source\u0000target" → Edge (+ last deltas)
    this.scene = null;
    this.closedScene = null; // {scene_id, summaries} until the next scene shows
    this.memories = new Map(); // id → Memory
    this.world = new Map(); // event_id → {event_id, title, status}
    this.activeTurn = null; // user_turn_id (or true) while a turn is in flight
    this.freshOpen = true; // the next chat_state starts a new subscription
    this.settledTurns = new Set(); // user_turn_ids seen settling
    this.doneBeats = new Set(); // beat_ids completed: late tokens for them are stale
    this.loaded = false; // a chat_state has arrived
    this.hasOlder = false; // turns before `turns[0]` are left to load (`load_older`)
    this.loadingOlder = false;
    this.queue = []; // QueuedTurn, next first: turns waiting behind the one in flight
    this.settings = null; // the chat's sampler settings (null fields: the server's defaults)
    this.takingIn = null; // who answered last while the turn's passes still run
  }

  /** The personas at this chat's table (none yet: `you` alone plays). */
  people() {
    return Array.isArray(this.info?.people) ? [...this.info.people] : [];
  }

  /** A persona sat down at this chat's table. */
  applySeat(msg) {
    if (!this.info || !msg.persona) return;
    const people = this.people();
    if (!people.includes(msg.persona.id)) people.push(msg.persona.id);
    this.info = { ...this.info, people };
  }

  /**
   * The turn's beats are done but it has not settled: the characters are
   * taking in what was said (relationships, memories). A turn sent now waits
   * for them.
   */
  settling() {
    return this.activeTurn !== null && this.live.size === 0 && this.takingIn !== null;
  }

  /** The bots of this chat's cast, host first. */
  botIds() {
    if (!this.info) return [];
    if (Array.isArray(this.info.cast) && this.info.cast.length) return [...this.info.cast];
    return [this.info.host_bot_id, this.info.guest_bot_id].filter((id) => id);
  }

  /** Whether a cast member is in the scene now (everyone, for a server without presence). */
  isPresent(botId) {
    const present = this.info?.present;
    return Array.isArray(present) ? present.includes(botId) : this.botIds().includes(botId);
  }

  /** Whether the server knows muting: its chat then carries `muted`. */
  supportsMute() {
    return Array.isArray(this.info?.muted);
  }

  isMuted(botId) {
    return this.supportsMute() && this.info.muted.includes(botId);
  }

  /** Apply a `presence` message: the member enters or leaves the scene. */
  applyPresence(msg) {
    if (!this.info) return;
    const cast = this.botIds();
    if (msg.present && !cast.includes(msg.bot_id)) cast.push(msg.bot_id); // added to the cast
    const present = new Set(this.info.present ?? cast);
    if (msg.present) present.add(msg.bot_id);
    else present.delete(msg.bot_id);
    this.info = { ...this.info, cast, present: cast.filter((id) => present.has(id)) };
  }

  /** A `chat` answer or message about this chat: its cast, presence and muting are news. */
  applyInfo(chat) {
    this.info = { ...this.info, ...chat };
  }

  /**
   * Whether a numbered message applies: "apply", "duplicate" (already
   * reflected, e.g. replayed twice) or "gap" (something was missed).
   */
  gate(seq) {
    if (typeof seq !== "number" || this.lastSeq === null) return "apply";
    if (seq <= this.lastSeq) return "duplicate";
    if (seq > this.lastSeq + 1) return "gap";
    return "apply";
  }

  /** Note that a numbered message was applied. */
  advance(seq) {
    if (typeof seq === "number") this.lastSeq = seq;
  }

  applyState(msg) {
    this.loaded = true;
    this.info = msg.chat ?? this.info;
    this.lastSeq = typeof msg.seq === "number" ? msg.seq : this.lastSeq;
    this.turns = (msg.timeline ?? []).map((turn) => ({ ...turn, error: null }));
    this.hasOlder = msg.has_older === true; // only the latest turns came
    this.edges = new Map();
    for (const edge of msg.edges ?? []) this.edges.set(edgeKey(edge), { ...edge });
    this.scene = msg.scene ?? null;
    this.queue = msg.queue ?? [];
    if (this.scene) this.closedScene = null;
    this.settings = msg.settings ?? null;
    this.takingIn = null;
    this.live = new Map();
    const flight = msg.in_flight;
    if (flight) {
      const latestUser = [...this.turns].reverse().find((turn) => turn.kind === "user");
      const beat = new LiveBeat(
        flight.beat_id,
        flight.speaker_id,
        latestUser ? latestUser.event_id : null,
        false,
        flight.text ?? "",
      );
      this.live.set(beat.beatId, beat);
    }
    // World events are not part of chat_state (unless a server adds them):
    // keep the ones seen, which `rewound` prunes.
    if (Array.isArray(msg.world_events)) {
      this.world = new Map(msg.world_events.map((event) => [event.event_id, event]));
    }
    if (this.freshOpen) {
      // A new subscription knows only what the state says is in flight.
      this.activeTurn = flight ? (this.live.get(flight.beat_id).userTurnId ?? true) : null;
      this.freshOpen = false;
    } else if (flight && this.activeTurn === null) {
      this.activeTurn = this.live.get(flight.beat_id).userTurnId ?? true;
    }
  }

  /** The event id the next `load_older` asks before; null when nothing older is left. */
  olderBefore() {
    return this.hasOlder && this.turns.length ? this.turns[0].event_id : null;
  }

  /**
   * An `older_turns` answer: its turns go before the ones shown. Returns the
   * turns added, or null when the answer is stale (a chat_state replaced the
   * timeline since it was asked for).
   */
  prependTurns(msg) {
    if (msg.before_event_id !== this.olderBefore()) return null;
    const first = this.turns[0].event_id;
    const older = (msg.turns ?? []).filter((turn) => turn.event_id < first).map((turn) => ({ ...turn, error: null }));
    this.turns = [...older, ...this.turns];
    this.hasOlder = msg.has_older === true;
    return older;
  }

  /** A user turn; null when it is already in the timeline. */
  addUserTurn(msg) {
    if (this.turns.some((turn) => turn.event_id === msg.event_id)) return null;
    const turn = {
      event_id: msg.event_id,
      kind: "user",
      speaker_id: msg.speaker_id ?? "you",
      text: msg.prose ?? "",
      truncated: false,
      interjection_of: null,
      user_turn_id: msg.event_id,
      error: null,
    };
    this.turns.push(turn);
    this.markActive(msg.event_id);
    return turn;
  }

  /** A beat started; null when it already completed (a late replay). */
  startBeat(msg) {
    if (this.doneBeats.has(msg.beat_id)) return null;
    let beat = this.live.get(msg.beat_id);
    if (!beat) {
      beat = new LiveBeat(msg.beat_id, msg.speaker_id, msg.user_turn_id, Boolean(msg.interjection));
      this.live.set(msg.beat_id, beat);
    } else {
      beat.userTurnId = msg.user_turn_id;
      beat.interjection = Boolean(msg.interjection);
    }
    if (this.activeTurn === null) this.markActive(msg.user_turn_id);
    this.takingIn = null;
    return beat;
  }

  /**
   * Apply a token. Returns null for a stale token, else {beat, added,
   * created, gap}: `added` is the text to append to what is shown (possibly
   * empty after skipping an overlap), `created` says the beat was unknown
   * until now, `gap` says text went missing before this token.
   */
  token(msg) {
    const text = typeof msg.text === "string" ? msg.text : "";
    const offset = typeof msg.offset === "number" ? msg.offset : 0;
    let beat = this.live.get(msg.beat_id);
    let created = false;
    if (!beat) {
      // A beat we never saw start: its start is numbered, so a missed one
      // shows as a seq gap and is replayed. Only a first token can begin a
      // beat here; a later one belongs to a beat that already completed.
      if (this.doneBeats.has(msg.beat_id) || offset > 0) return null;
      beat = new LiveBeat(msg.beat_id, msg.speaker_id, this.latestUserTurnId(), false);
      this.live.set(msg.beat_id, beat);
      created = true;
    }
    const length = codePoints(text);
    if (offset > beat.end) {
      const added = (beat.text ? GAP_MARK : GAP_MARK.trimStart()) + text;
      beat.text += added;
      beat.end = offset + length;
      return { beat, added, created, gap: true };
    }
    if (offset + length <= beat.end) return { beat, added: "", created, gap: false };
    const added = dropCodePoints(text, beat.end - offset);
    beat.text += added;
    beat.end = offset + length;
    return { beat, added, created, gap: false };
  }

  /** A beat completed: the committed turn replaces the live text. */
  completeBeat(msg) {
    const beat = this.live.get(msg.beat_id);
    this.live.delete(msg.beat_id);
    this.doneBeats.add(msg.beat_id);
    if (this.activeTurn !== null) this.takingIn = msg.speaker_id;
    const turn = {
      event_id: msg.event_id,
      kind: "assistant",
      speaker_id: msg.speaker_id,
      text: msg.text ?? "",
      truncated: Boolean(msg.truncated),
      interjection_of: msg.interjection_of ?? null,
      user_turn_id: beat?.userTurnId ?? this.latestUserTurnId(),
      error: msg.error ?? null,
    };
    const at = this.turns.findIndex((t) => t.event_id === turn.event_id);
    if (at >= 0) this.turns[at] = turn;
    else this.turns.push(turn);
    return turn;
  }

  applyEdge(msg) {
    const key = edgeKey(msg);
    const before = this.edges.get(key);
    this.edges.set(key, {
      source_id: msg.source_id,
      target_id: msg.target_id,
      affinity: msg.affinity,
      trust: msg.trust,
      summary: before?.summary ?? "",
      knowledge_facts: msg.knowledge_facts ?? before?.knowledge_facts ?? [],
      affinity_delta: msg.affinity_delta,
      trust_delta: msg.trust_delta,
    });
  }

  /** Keep a memory if it belongs to this chat's bots; true when kept. */
  applyMemory(memory) {
    if (!memory || memory.chat_id !== this.id) return false;
    this.memories.set(memory.id, memory);
    return true;
  }

  /** Replace one bot's memories with a fresh list. */
  replaceMemories(botId, memories) {
    for (const [id, memory] of this.memories) {
      if (memory.bot_id === botId) this.memories.delete(id);
    }
    for (const memory of memories) this.applyMemory(memory);
  }

  applyWorldEvent(msg) {
    const before = this.world.get(msg.event_id);
    this.world.set(msg.event_id, { ...before, event_id: msg.event_id, title: msg.title, status: msg.status });
  }

  sceneClosed(msg) {
    this.scene = null;
    this.closedScene = { scene_id: msg.scene_id, summaries: msg.summaries ?? {} };
  }

  /** A turn settled: the chat takes the next one (turns never overlap). */
  settled(msg) {
    this.activeTurn = null;
    this.takingIn = null;
    if (typeof msg.user_turn_id === "number") this.settledTurns.add(msg.user_turn_id);
  }

  /**
   * A turn is in flight (our command was accepted, or the server said busy).
   * An `accepted` can arrive after its own `turn_settled`: never mark a
   * settled turn active again, or Send would stay disabled for good.
   */
  markActive(userTurnId = true) {
    if (userTurnId !== true && this.settledTurns.has(userTurnId)) return;
    if (this.activeTurn === null || userTurnId !== true) this.activeTurn = userTurnId;
  }

  /** The chat was rewound to `eventId`: forget world events written after it. */
  rewound(eventId) {
    for (const id of this.world.keys()) {
      if (id > eventId) this.world.delete(id);
    }
  }

  latestUserTurnId() {
    for (let i = this.turns.length - 1; i >= 0; i--) {
      if (this.turns[i].kind === "user") return this.turns[i].event_id;
    }
    return null;
  }

  /** The turn `regenerate` may replace: the newest assistant turn. */
  latestAssistant() {
    for (let i = this.turns.length - 1; i >= 0; i--) {
      if (this.turns[i].kind === "assistant") return this.turns[i];
    }
    return null;
  }

  /** The user turn an assistant turn answers. */
  userTurnFor(turn) {
    const byId = this.turns.find((t) => t.kind === "user" && t.event_id === turn.user_turn_id);
    if (byId) return byId;
    const at = this.turns.indexOf(turn);
    for (let i = at - 1; i >= 0; i--) {
      if (this.turns[i].kind === "user") return this.turns[i];
    }
    return null;
  }

  /**
   * A regenerate was accepted: drop the replaced turn at once (the server
   * sends a fresh chat_state after the new beat). With edited prose the old
   * user turn and its answers go too, since the edit supersedes them.
   */
  dropForRegenerate(target, edited) {
    const userTurnId = target.user_turn_id;
    this.turns = this.turns.filter((turn) => {
      if (turn.event_id === target.event_id) return false;
      if (!edited) return true;
      return turn.event_id !== userTurnId && turn.user_turn_id !== userTurnId;
    });
  }
}

function edgeKey(edge) {
  return `${edge.source_id}\u0000${edge.target_id}`;
}
