// The timeline view: committed turns, beats streaming in, scene breaks, and
// the rewind control of each turn. It draws what chat.js knows; it changes
// the story only through the `rewind` callbacks it is given.

import { describePreview } from "./branches.js";
import { tint } from "./colour.js";
import { fill, h, prose } from "./dom.js";

// How close to the bottom (px) still counts as "reading the latest": only
// then does new text scroll the view, so reading older turns is not disturbed.
const FOLLOW_SLACK_PX = 80;
// How close to the top (px) the reader scrolls before older turns are asked
// for: early enough that they are usually there before the top is reached.
const OLDER_SLACK_PX = 400;

/**
 * Draws the open chat's timeline into `root` (an <ol>). `names(id)` gives a
 * speaker's display name; `previewRewind(turn)` resolves with a
 * rewind_preview answer; `rewind(turn)` performs the rewind; `loadOlder()`
 * asks for the turns before the first one shown (see `prependTurns`).
 */
export class Timeline {
  constructor(root, { names, previewRewind, rewind, showError, loadOlder, decorate }) {
    this.root = root;
    this.names = names;
    this.previewRewind = previewRewind;
    this.rewindTo = rewind;
    this.showError = showError;
    this.loadOlder = loadOlder;
    this.decorate = decorate; // adds a turn's branch controls (branches.js)
    this.beatEls = new Map(); // beat_id → { li, body }
    this.rewindBox = null;
    this.olderEl = null; // the "older turns" row at the top, while there are some
    root.addEventListener("scroll", () => this.nearTop() && this.loadOlder(), { passive: true });
  }

  /**
   * Draw everything again (a chat opened, or a chat_state arrived).
   * `jump` scrolls to the newest turn even when the reader was further up.
   */
  render(chat, { jump = false } = {}) {
    const follow = this.following();
    this.beatEls.clear();
    this.rewindBox = null;
    if (!chat) {
      fill(this.root, h("li", { class: "timeline-empty" }, "Pick a chat on the left, or start a new one."));
      return;
    }
    const items = chat.turns.map((turn) => this.turnElement(turn));
    for (const beat of chat.live.values()) items.push(this.liveElement(beat));
    if (items.length === 0) {
      const note = chat.loaded ? "The story starts with your first turn." : "Opening the chat\u2026";
      items.push(h("li", { class: "timeline-empty" }, note));
    }
    this.olderEl = chat.hasOlder ? this.olderElement() : null;
    fill(this.root, this.olderEl, ...items);
    if (follow || jump) this.scrollToEnd();
  }

  /**
   * Older turns arrived: they go above the ones shown, and what the reader
   * was looking at stays where it was on the screen (the distance from the
   * bottom is kept, whatever the browser's own scroll anchoring did).
   */
  prependTurns(turns, chat) {
    const fromBottom = this.root.scrollHeight - this.root.scrollTop;
    const first = this.olderEl ? this.olderEl.nextSibling : this.root.firstChild;
    for (const turn of turns) this.root.insertBefore(this.turnElement(turn), first);
    if (turns.length) this.clearEmpty();
    if (!chat.hasOlder) {
      this.olderEl?.remove();
      this.olderEl = null;
    } else this.showOlder("idle");
    this.root.scrollTop = this.root.scrollHeight - fromBottom;
  }

  /** Whether the reader is near the top, where the older turns should come in. */
  nearTop() {
    return this.olderEl !== null && this.root.scrollTop < OLDER_SLACK_PX;
  }

  /** Say whether older turns are loading ("loading"), or can be ("idle"). */
  showOlder(status) {
    if (!this.olderEl) return;
    this.olderEl.dataset.state = status;
    const button = this.olderEl.querySelector("button");
    button.disabled = status === "loading";
    button.textContent = status === "loading" ? "Loading older turns\u2026" : "Load older turns";
  }

  olderElement() {
    return h(
      "li",
      { class: "timeline-older", testid: "older", data: { state: "idle" } },
      h(
        "button",
        { type: "button", class: "quiet", testid: "load-older", onclick: () => this.loadOlder() },
        "Load older turns",
      ),
    );
  }

  /** Refresh speaker names after bots or "you" were renamed. */
  renameSpeakers() {
    for (const label of this.root.querySelectorAll(".speaker[data-speaker-id]")) {
      label.textContent = this.names(label.dataset.speakerId);
    }
  }

  appendTurn(turn) {
    this.withFollow(() => {
      this.clearEmpty();
      this.root.append(this.turnElement(turn));
    });
  }

  startBeat(beat) {
    if (this.beatEls.has(beat.beatId)) {
      const { li } = this.beatEls.get(beat.beatId);
      li.classList.toggle("turn--interjection", beat.interjection);
      return;
    }
    this.withFollow(() => {
      this.clearEmpty();
      this.root.append(this.liveElement(beat));
    });
  }

  /** Append streamed text to a live beat (plain text nodes: cheap and safe). */
  appendToBeat(beat, added) {
    const shown = this.beatEls.get(beat.beatId);
    if (!shown) {
      this.startBeat(beat);
      return;
    }
    if (added) this.withFollow(() => shown.body.append(added));
  }

  /** A beat completed: its committed turn takes the live element's place. */
  completeBeat(beatId, turn) {
    const shown = this.beatEls.get(beatId);
    this.beatEls.delete(beatId);
    const element = this.turnElement(turn);
    const existing = this.root.querySelector(`[data-testid="turn"][data-event-id="${turn.event_id}"]`);
    this.withFollow(() => {
      if (shown) {
        shown.li.replaceWith(element);
        existing?.remove();
      } else if (existing) existing.replaceWith(element);
      else {
        this.clearEmpty();
        this.root.append(element);
      }
    });
  }

  /** Mark where a scene ended, with each witness's summary. */
  sceneBreak(closed) {
    const summaries = Object.entries(closed.summaries ?? {});
    this.withFollow(() => {
      this.root.append(
        h(
          "li",
          { class: "scene-break", testid: "scene-break", data: { sceneId: closed.scene_id } },
          h("span", { class: "scene-break-title" }, "The scene closes"),
          summaries.length
            ? h(
                "ul",
                { class: "scene-summaries" },
                summaries.map(([botId, text]) =>
                  h("li", {}, h("span", { class: "speaker" }, this.names(botId)), " ", text),
                ),
              )
            : null,
        ),
      );
    });
  }

  // --- elements -------------------------------------------------------------

  turnElement(turn) {
    const user = turn.kind === "user";
    const classes = ["turn", user ? "turn--user" : "turn--assistant"];
    if (turn.interjection_of) classes.push("turn--interjection");
    if (turn.truncated) classes.push("turn--truncated");
    const name = this.names(turn.speaker_id);
    const li = h(
      "li",
      {
        class: classes.join(" "),
        testid: "turn",
        data: {
          eventId: turn.event_id,
          kind: turn.kind,
          speakerId: turn.speaker_id,
          truncated: turn.truncated ? "true" : "false",
          interjectionOf: turn.interjection_of,
        },
      },
      h(
        "div",
        { class: "turn-head" },
        h("span", { class: "speaker", data: { speakerId: turn.speaker_id } }, name),
        turn.interjection_of ? h("span", { class: "turn-note" }, "interjects") : null,
        h(
          "button",
          {
            type: "button",
            class: "turn-rewind quiet",
            testid: "rewind",
            title: "Rewind: go on from this turn; what came after stays on a branch you can return to",
            onclick: () => this.openRewind(turn, li),
          },
          "Rewind to here",
        ),
      ),
      turn.text ? h("div", { class: "turn-body" }, prose(turn.text)) : null,
      turn.truncated ? h("div", { class: "turn-stopped", testid: "stopped" }, stoppedNote(turn)) : null,
    );
    if (!user) tint(li, turn.speaker_id); // each character's beats in their own colour
    this.decorate?.(turn, li);
    return li;
  }

  liveElement(beat) {
    const body = h("div", { class: "turn-body" }, beat.text);
    const li = h(
      "li",
      {
        class: `turn turn--assistant turn--live${beat.interjection ? " turn--interjection" : ""}`,
        testid: "beat-live",
        "aria-busy": "true",
        data: { beatId: beat.beatId, speakerId: beat.speakerId },
      },
      h(
        "div",
        { class: "turn-head" },
        h("span", { class: "speaker", data: { speakerId: beat.speakerId } }, this.names(beat.speakerId)),
        h("span", { class: "turn-note live-note" }, beat.interjection ? "interjects" : "is speaking"),
      ),
      body,
    );
    tint(li, beat.speakerId);
    this.beatEls.set(beat.beatId, { li, body });
    return li;
  }

  // --- rewind ---------------------------------------------------------------

  /** First show what a rewind would remove; only the confirm button rewinds. */
  async openRewind(turn, li) {
    this.closeRewind();
    const text = h("p", { testid: "rewind-preview" }, "Counting what comes after this turn\u2026");
    const confirm = h(
      "button",
      { type: "button", class: "danger", testid: "rewind-confirm", disabled: true },
      "Rewind",
    );
    const cancel = h(
      "button",
      { type: "button", class: "quiet", testid: "rewind-cancel", onclick: () => this.closeRewind() },
      "Keep everything",
    );
    const box = h(
      "div",
      { class: "rewind-box", role: "group", "aria-label": "Rewind" },
      text,
      h("div", { class: "row" }, confirm, cancel),
    );
    li.append(box);
    this.rewindBox = box;
    let preview;
    try {
      preview = await this.previewRewind(turn);
    } catch (error) {
      if (this.rewindBox === box) this.closeRewind();
      this.showError(error);
      return;
    }
    if (this.rewindBox !== box) return;
    text.textContent = describePreview(preview); // in plain words (branches.js)
    confirm.disabled = false;
    confirm.addEventListener("click", async () => {
      confirm.disabled = true;
      try {
        await this.rewindTo(turn);
        if (this.rewindBox === box) this.closeRewind();
      } catch (error) {
        confirm.disabled = false;
        this.showError(error);
      }
    });
    confirm.focus();
  }

  /** Close the rewind confirmation if one is open; true when it was. */
  closeRewind() {
    if (!this.rewindBox) return false;
    this.rewindBox.remove();
    this.rewindBox = null;
    return true;
  }

  // --- scrolling --------------------------------------------------------------

  following() {
    const el = this.root;
    return el.scrollHeight - el.scrollTop - el.clientHeight < FOLLOW_SLACK_PX;
  }

  withFollow(change) {
    const follow = this.following();
    change();
    if (follow) this.scrollToEnd();
  }

  scrollToEnd() {
    this.root.scrollTop = this.root.scrollHeight;
  }

  clearEmpty() {
    for (const empty of this.root.querySelectorAll(".timeline-empty")) empty.remove();
  }
}

/** "— stopped", with the reason when it was not the person's own Stop. */
export function stoppedNote(turn) {
  const reason = turn.error;
  if (!reason || reason === "cancelled" || reason === "cancel") return "\u2014 stopped";
  return `\u2014 stopped: ${reason}`;
}
