// The composer under the timeline: write a turn, stop the beat in flight,
// or regenerate the latest answer (optionally after editing your own turn).

import { byTestId, codePoints, fill, h } from "./dom.js";

/** The protocol's limit on a turn's prose, in characters after trimming. */
export const MAX_PROSE = 8000;
const SHOW_COUNT_FROM = MAX_PROSE - 1000;
/** The protocol's limit on turns queued behind the one in flight. */
export const MAX_QUEUE = 4;

/**
 * `root` holds the composer's controls. `chat()` returns the open chat model
 * (or null), `online()` whether the server is reachable. The actions return
 * promises: `sendTurn(prose)`, `cancel()`, `regenerate(turn, prose|null)`.
 */
export class Composer {
  constructor(root, { chat, online, sendTurn, cancel, regenerate, showError, names }) {
    this.chat = chat;
    this.names = names;
    this.online = online;
    this.sendTurn = sendTurn;
    this.cancelTurn = cancel;
    this.regenerateTurn = regenerate;
    this.showError = showError;
    this.sending = false;
    this.el = (id) => byTestId(id, root);
    this.prose = this.el("prose");
    this.replyAs = this.el("reply-as");
    this.wire();
  }

  wire() {
    this.el("composer").addEventListener("submit", (event) => {
      event.preventDefault();
      this.send();
    });
    this.prose.addEventListener("keydown", (event) => {
      // Enter sends, Shift+Enter is a new line; never while an input method
      // is still composing a character.
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        this.send();
      }
    });
    this.prose.addEventListener("input", () => this.showCount());
    this.replyAs.addEventListener("change", () => this.onReplyAs?.());
    this.el("stop").addEventListener("click", () => this.stop());
    this.el("regenerate").addEventListener("click", () => this.openRegenerate());
    this.el("regenerate-cancel").addEventListener("click", () => this.closeRegenerate());
    this.el("regenerate-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.confirmRegenerate();
    });
    this.el("regenerate-prose").addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        this.confirmRegenerate();
      }
    });
  }

  /** Enable exactly what makes sense now. */
  update() {
    const chat = this.chat();
    const online = this.online();
    const inFlight = Boolean(chat && chat.activeTurn !== null);
    // While a turn is in flight, Send queues the turn behind it (four at most).
    const full = (chat?.queue?.length ?? 0) >= MAX_QUEUE;
    this.el("send").disabled = !chat || !online || (inFlight && full) || this.sending;
    this.el("send").textContent = inFlight ? "Queue" : "Send";
    this.el("send").title = inFlight ? "Queue behind the answer being written (Enter)" : "Send (Enter)";
    // The beats are done, the passes run: say so (a turn sent now queues behind them).
    const settling = Boolean(chat?.settling());
    this.el("stop").disabled = !chat || !online || !inFlight;
    this.el("regenerate").disabled = !chat || !online || inFlight || !chat.latestAssistant();
    this.el("regenerate-confirm").disabled = this.el("send").disabled || inFlight || !chat?.latestAssistant();
    this.prose.disabled = !chat;
    this.el("composer").dataset.inFlight = inFlight ? "true" : "false";
    const status = this.el("turn-status");
    status.hidden = !settling;
    status.textContent = settling ? `${this.names(chat.takingIn)} is taking in what was said\u2026` : "";
    this.renderReplyAs(chat);
    if (!chat) this.closeRegenerate();
    this.onUpdate?.(); // controls beside the composer's follow it
  }

  async send() {
    const chat = this.chat();
    if (!chat || this.el("send").disabled) return;
    const prose = this.prose.value;
    const trimmed = prose.trim();
    if (!trimmed) return;
    if (codePoints(trimmed) > MAX_PROSE) {
      this.showError(tooLong(trimmed));
      return;
    }
    this.sending = true;
    this.update();
    try {
      await this.sendTurn(prose, this.replyAs.hidden ? "" : this.replyAs.value);
      // Keep anything typed while the turn travelled.
      if (this.prose.value === prose) this.prose.value = "";
      // "Reply as" forces one turn's speaker; the next turn is the story's to decide again.
      this.chooseReplyAs("");
      this.showCount();
    } catch (error) {
      this.showError(error);
    } finally {
      this.sending = false;
      this.update();
    }
  }

  /**
   * "Reply as": who answers the next turn. Shown only when the server knows
   * it (its chat carries `muted`, which came with `send_turn.reply_as`);
   * the choices are the characters present, and "" lets the story decide.
   */
  renderReplyAs(chat) {
    const select = this.replyAs;
    select.hidden = !chat?.supportsMute();
    if (select.hidden) return;
    const present = chat.botIds().filter((id) => chat.isPresent(id));
    const chosen = present.includes(select.value) ? select.value : "";
    const options = [["", "anyone answers"], ...present.map((id) => [id, `${this.names(id)} answers`])];
    const same =
      select.options.length === options.length &&
      options.every(([value, label], i) => select.options[i].value === value && select.options[i].text === label);
    if (!same) fill(select, options.map(([value, label]) => h("option", { value }, label)));
    select.value = chosen;
    select.disabled = this.el("send").disabled;
  }

  /** Who answers the next turn: a bot id, or "" for whoever the story picks. */
  replyAsValue() {
    return this.replyAs.hidden ? "" : this.replyAs.value;
  }

  /** Make `botId` answer the next turn ("" lets the story decide). */
  chooseReplyAs(botId) {
    this.replyAs.value = botId;
    if (this.replyAs.value !== botId) this.replyAs.value = "";
    this.replyAs.dispatchEvent(new Event("change"));
  }

  /** Stop the beat in flight; true when there was one to stop. */
  stop() {
    const chat = this.chat();
    if (!chat || chat.activeTurn === null) return false;
    this.cancelTurn().catch((error) => this.showError(error));
    return true;
  }

  openRegenerate() {
    const chat = this.chat();
    const target = chat?.latestAssistant();
    if (!target) return;
    const asked = chat.userTurnFor(target);
    this.regenerating = { target, original: asked?.text ?? "" };
    const box = this.el("regenerate-prose");
    box.value = this.regenerating.original;
    this.el("regenerate-form").hidden = false;
    this.update();
    box.focus();
    box.setSelectionRange(box.value.length, box.value.length);
  }

  /** Close the regenerate editor if open; true when it was. */
  closeRegenerate() {
    const form = this.el("regenerate-form");
    if (form.hidden) return false;
    form.hidden = true;
    this.regenerating = null;
    return true;
  }

  async confirmRegenerate() {
    const chat = this.chat();
    const pending = this.regenerating;
    if (!chat || !pending || this.el("regenerate-confirm").disabled) return;
    // A chat_state may have redrawn the timeline since the editor opened.
    const target =
      chat.turns.find((turn) => turn.event_id === pending.target.event_id) ?? chat.latestAssistant();
    if (!target) return;
    // Unchanged prose regenerates the answer alone; edited prose replaces the turn.
    const prose = this.el("regenerate-prose").value;
    const edited = prose.trim() !== "" && prose.trim() !== pending.original.trim();
    if (edited && codePoints(prose.trim()) > MAX_PROSE) {
      this.showError(tooLong(prose.trim()));
      return;
    }
    const confirm = this.el("regenerate-confirm");
    confirm.disabled = true;
    try {
      await this.regenerateTurn(target, edited ? prose : null);
      this.closeRegenerate();
    } catch (error) {
      this.showError(error);
    } finally {
      this.update();
    }
  }

  showCount() {
    const count = codePoints(this.prose.value.trim());
    const counter = this.el("prose-count");
    counter.hidden = count < SHOW_COUNT_FROM;
    counter.textContent = `${count} / ${MAX_PROSE}`;
    counter.classList.toggle("over", count > MAX_PROSE);
  }

  focus() {
    if (!this.prose.disabled) this.prose.focus();
  }
}

function tooLong(prose) {
  return new Error(`Your turn is ${codePoints(prose)} characters long; the limit is ${MAX_PROSE}.`);
}
