// Branches and alternatives on the page: `‹ 2/3 ›` on every beat with
// alternatives, Regenerate on any beat, Edit on the person's turns, Continue
// on the latest beat, the Branches panel, and the rewind preview in plain
// words. The story changes only on the server: every control here sends a
// command, and the fresh chat_state that follows a fork or a switch redraws
// the page (see app.js).

import { byTestId, codePoints, fill, h } from "./dom.js";

/** The protocol's limit on a turn's prose, in characters after trimming. */
const MAX_PROSE = 8000;

/**
 * `side` holds the Branches panel, `timelineRoot` the timeline's <ol>.
 * `request(type, fields)` sends a command and resolves with its answer;
 * `chat()` is the open chat model (or null); `accepted(answer)` is told of
 * an `accepted` answer (a turn is now in flight); `online()` says whether
 * the server is reachable.
 */
export class Branches {
  constructor(side, timelineRoot, { request, chat, online, showError, accepted }) {
    this.request = request;
    this.chat = chat;
    this.online = online;
    this.showError = showError;
    this.accepted = accepted;
    this.timelineRoot = timelineRoot;
    this.list = byTestId("branches", side);
    this.continueButton = byTestId("continue");
    this.continueButton?.addEventListener("click", () => this.continueBeat());
    this.editBox = null;
    this.known = null; // the last `branches` answer, for the ‹ › fallback
    this.supported = true; // false once the server said it knows no branches
    this.canContinue = true; // false once the server said it knows no `continue`
  }

  // --- the timeline's controls --------------------------------------------------

  /** Add a turn's controls to its element (the timeline calls this for each turn). */
  decorate(turn, li) {
    const head = li.querySelector(".turn-head");
    if (!head || !this.supported) return;
    const rewind = head.querySelector('[data-testid="rewind"]');
    const controls = [];
    if (turn.kind === "assistant") {
      if (turn.alternatives > 1) controls.push(this.pager(turn));
      if (this.answersThePerson(turn)) {
        controls.push(
          h(
            "button",
            {
              type: "button",
              class: "turn-action quiet",
              testid: "turn-regenerate",
              disabled: this.busy(),
              title: "Write this answer again; this one stays as an alternative",
              onclick: () => this.regenerate(turn),
            },
            "Regenerate",
          ),
        );
      }
    } else if (turn.kind === "user") {
      controls.push(
        h(
          "button",
          {
            type: "button",
            class: "turn-action quiet",
            testid: "turn-edit",
            disabled: this.busy(),
            title: "Say this turn differently; the story so far stays on a branch",
            onclick: () => this.openEdit(turn, li),
          },
          "Edit",
        ),
      );
    }
    if (!controls.length) return;
    // One group at the right end of the head, Rewind last: on a narrow
    // screen it wraps as a whole, still flush right.
    const group = h("span", { class: "turn-actions" }, controls);
    head.insertBefore(group, rewind);
    if (rewind) group.append(rewind);
  }

  /** `‹ 2/3 ›`: which alternative of the beat shows, and the way to the others. */
  pager(turn) {
    const at = turn.alternative;
    const of = turn.alternatives;
    const step = (to, label, testid, symbol) =>
      h(
        "button",
        {
          type: "button",
          class: "quiet alt-step",
          testid,
          "aria-label": label,
          title: label,
          disabled: to < 1 || to > of || this.busy(),
          data: { end: to < 1 || to > of ? "true" : null },
          onclick: () => this.select(turn, to),
        },
        symbol,
      );
    return h(
      "span",
      {
        class: "alt-pager",
        testid: "alternatives",
        role: "group",
        "aria-label": "Alternatives",
        data: { alternative: at, alternatives: of },
      },
      step(at - 1, "Previous alternative", "alternative-prev", "\u2039"),
      h("span", { class: "alt-count", testid: "alternative-count" }, `${at}/${of}`),
      step(at + 1, "Next alternative", "alternative-next", "\u203a"),
    );
  }

  /** Whether a beat answers a line of the person (a greeting answers none). */
  answersThePerson(turn) {
    const chat = this.chat();
    if (!chat) return false;
    const at = chat.turns.indexOf(turn);
    return chat.hasOlder || chat.turns.slice(0, at < 0 ? undefined : at).some((t) => t.kind === "user");
  }

  /** Show alternative `to` (from 1) of a beat. */
  async select(turn, to) {
    const chat = this.chat();
    if (!chat || !this.idle(chat)) return;
    try {
      // Each beat names its alternatives' events (`alternative_ids`), oldest first.
      const ids = turn.alternative_ids;
      if (!Array.isArray(ids) || ids.length !== turn.alternatives) {
        this.showError(new Error("This server does not name a beat's alternatives."));
        return;
      }
      await this.request("select_alternative", { chat_id: chat.id, event_id: ids[to - 1] });
    } catch (error) {
      this.showError(error);
    }
  }

  async regenerate(turn) {
    const chat = this.chat();
    if (!chat || !this.idle(chat)) return;
    try {
      this.accepted(await this.request("regenerate", { chat_id: chat.id, event_id: turn.event_id }));
    } catch (error) {
      this.showError(error);
    }
  }

  /** The inline editor of one of the person's turns. */
  openEdit(turn, li) {
    this.closeEdit();
    const text = h("textarea", {
      class: "edit-prose",
      testid: "edit-prose",
      rows: 3,
      maxlength: MAX_PROSE,
      "aria-label": "Your turn, said differently",
      value: turn.text,
    });
    const confirm = h("button", { type: "submit", testid: "edit-confirm" }, "Say it this way");
    const cancel = h(
      "button",
      { type: "button", class: "quiet", testid: "edit-cancel", onclick: () => this.closeEdit() },
      "Cancel",
    );
    const box = h(
      "form",
      { class: "edit-box", testid: "edit-form" },
      h("p", { class: "note" }, "What follows this turn now stays on a branch you can return to."),
      text,
      h("div", { class: "row" }, confirm, cancel),
    );
    const submit = async (event) => {
      event?.preventDefault();
      const prose = text.value;
      if (!prose.trim() || confirm.disabled) return;
      if (codePoints(prose.trim()) > MAX_PROSE) {
        this.showError(new Error(`Your turn is ${codePoints(prose.trim())} characters long; the limit is ${MAX_PROSE}.`));
        return;
      }
      const chat = this.chat();
      if (!chat || !this.idle(chat)) return;
      confirm.disabled = true;
      try {
        const answer = await this.request("edit_turn", { chat_id: chat.id, event_id: turn.event_id, prose });
        if (this.editBox === box) this.closeEdit();
        this.accepted(answer);
      } catch (error) {
        confirm.disabled = false;
        this.showError(error);
      }
    };
    box.addEventListener("submit", submit);
    text.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) submit(event);
    });
    li.append(box);
    this.editBox = box;
    text.focus();
    text.setSelectionRange(text.value.length, text.value.length);
  }

  /** Close the turn editor if one is open; true when it was. */
  closeEdit() {
    if (!this.editBox) return false;
    this.editBox.remove();
    this.editBox = null;
    return true;
  }

  /** Nothing in flight: a fork or a switch would be refused as busy. */
  idle(chat) {
    return chat.activeTurn === null;
  }

  /** A turn of the open chat is in flight (or the server is away). */
  busy() {
    const chat = this.chat();
    return !chat || !this.online() || !this.idle(chat);
  }

  // --- continue -------------------------------------------------------------------

  /**
   * Enable what makes sense now: the turns' controls while nothing is in
   * flight, Continue when the latest turn is a beat too.
   */
  update() {
    const busy = this.busy();
    for (const button of this.timelineRoot.querySelectorAll(".turn-actions button.turn-action, .alt-step")) {
      button.disabled = busy || button.dataset.end === "true";
    }
    if (!this.continueButton) return;
    const chat = this.chat();
    const last = chat?.turns.at(-1);
    this.continueButton.hidden = !this.supported || !this.canContinue;
    this.continueButton.disabled =
      !chat || !this.online() || chat.activeTurn !== null || last?.kind !== "assistant";
  }

  async continueBeat() {
    const chat = this.chat();
    const last = chat?.turns.at(-1);
    if (!chat || last?.kind !== "assistant" || !this.idle(chat)) return;
    chat.continuing = last.event_id;
    try {
      this.accepted(await this.request("continue", { chat_id: chat.id }));
    } catch (error) {
      chat.continuing = null;
      if (error.code === "unknown_type") {
        // A server that cannot continue a beat: the button goes.
        this.canContinue = false;
        this.update();
        this.showError(new Error("This server cannot continue a beat."));
        return;
      }
      this.showError(error);
    }
  }

  /**
   * A beat that goes on from the latest one (`continue`): its live text
   * starts as the committed text, so the tokens, whose offsets count on from
   * it, append to it, and the committed beat's element makes way for the
   * live one. Returns the live beat, or null when `msg` starts a new beat.
   */
  resume(chat, msg) {
    const last = chat.turns.at(-1);
    if (!last || last.kind !== "assistant" || msg.interjection) return null;
    const asked = chat.continuing === last.event_id;
    // Another page's Continue: a beat of the same speaker for the same line
    // can only go on from the one shown (a regenerate first redraws the chat).
    const same = last.speaker_id === msg.speaker_id && last.user_turn_id === msg.user_turn_id;
    if (!asked && !same) return null;
    chat.continuing = null;
    chat.turns = chat.turns.slice(0, -1);
    chat.doneBeats.delete(msg.beat_id);
    this.timelineRoot.querySelector(`[data-testid="turn"][data-event-id="${last.event_id}"]`)?.remove();
    const beat = chat.startBeat(msg);
    if (beat && !beat.text) {
      beat.text = last.text;
      beat.end = codePoints(last.text);
    }
    return beat;
  }

  // --- the Branches panel ------------------------------------------------------------

  /** Another chat opened: forget this one's branches until they are asked for. */
  reset() {
    this.closeEdit();
    this.known = null;
    this.render();
  }

  /** Ask for the open chat's branches and draw them. */
  async refresh() {
    const chat = this.chat();
    if (!this.list || !chat || !this.supported) return this.render();
    let answer;
    try {
      answer = await this.request("list_branches", { chat_id: chat.id });
    } catch (error) {
      if (error.code === "unknown_type") {
        // A server before branches: none of these controls apply.
        this.supported = false;
        this.update();
        return this.render();
      }
      if (error.code !== "not_found") this.showError(error);
      return;
    }
    if (this.chat() !== chat) return;
    this.known = answer.branches ?? [];
    this.render();
  }

  render() {
    if (!this.list) return;
    const chat = this.chat();
    if (!chat || !this.supported) {
      return fill(this.list, chat ? h("li", { class: "muted" }, "This server keeps no branches.") : null);
    }
    const branches = this.known ?? [];
    if (branches.length <= 1) {
      return fill(
        this.list,
        h("li", { class: "muted" }, "One path so far. Regenerating, editing or rewinding starts another."),
      );
    }
    fill(this.list, ...branches.map((branch, index) => this.branchItem(chat, branch, index)));
  }

  branchItem(chat, branch, index) {
    const name = index === 0 ? "The first path" : `Branch ${index + 1}`;
    const turns = `${branch.length} ${branch.length === 1 ? "turn" : "turns"}`;
    const switchTo = async (button) => {
      if (!this.idle(chat)) return;
      button.disabled = true;
      try {
        await this.request("switch_branch", { chat_id: chat.id, branch_id: branch.branch_id });
      } catch (error) {
        button.disabled = false;
        this.showError(error);
      }
    };
    const button = h(
      "button",
      {
        type: "button",
        class: "branch-switch quiet",
        testid: "branch-switch",
        disabled: branch.current,
        title: branch.current ? "The story is on this branch" : "Go on from this branch",
        onclick: (event) => switchTo(event.currentTarget),
      },
      branch.current ? "Current" : "Switch",
    );
    return h(
      "li",
      {
        class: `branch${branch.current ? " branch--current" : ""}`,
        testid: "branch",
        data: {
          branchId: branch.branch_id,
          current: branch.current ? "true" : "false",
          forkEventId: branch.fork_event_id,
        },
      },
      h(
        "div",
        { class: "branch-head" },
        h("span", { class: "branch-name" }, name),
        h("span", { class: "muted branch-size" }, turns),
        button,
      ),
      h("div", { class: "branch-fork muted", testid: "branch-fork" }, forkPoint(chat, branch)),
      branch.last_line ? h("div", { class: "branch-last", testid: "branch-last" }, snippet(branch.last_line, 140)) : null,
    );
  }
}

/** Where a branch leaves its parent, as the person reads it. */
function forkPoint(chat, branch) {
  if (branch.fork_event_id == null) return "From the start of the chat";
  // The last turn shown at or before the fork point (the fork is most often
  // on the path shown: the branches share it up to there).
  let before = null;
  for (const turn of chat.turns) {
    if (turn.event_id <= branch.fork_event_id) before = turn;
  }
  if (!before) return "Forks before the turns shown";
  return `Forks after: ${snippet(before.text, 60)}`;
}

function snippet(text, limit) {
  const flat = String(text).replace(/\s+/g, " ").trim();
  return flat.length > limit ? `${flat.slice(0, limit - 1)}\u2026` : flat;
}

// What a rewind would move, for a server whose preview has no `summary`:
// the kinds a person would name, in plain words.
const COUNTED = [
  [["user_turn", "user_turn_edit", "assistant_turn"], "turn", "turns"],
  [["memory_written"], "memory", "memories"],
  [["edge_update", "edge_updated"], "relationship change", "relationship changes"],
  [["scene_closed", "scene_opened"], "scene change", "scene changes"],
  [["world_event_created", "world_event_activated", "world_event_completed", "world_event_cancelled"], "world event change", "world event changes"],
];

/**
 * The rewind box's text: the server's own `summary` when it sends one
 * ("3 turns, 2 memories and 1 relationship change move to a branch you can
 * return to"), never event kinds.
 */
export function describePreview(preview) {
  const total = Number(preview.total_events) || 0;
  if (total === 0) return "Nothing comes after this turn: rewinding here changes nothing.";
  if (typeof preview.summary === "string" && preview.summary) return sentence(preview.summary);
  const byKind = preview.by_kind ?? {};
  const parts = [];
  for (const [kinds, one, many] of COUNTED) {
    const count = kinds.reduce((sum, kind) => sum + (Number(byKind[kind]) || 0), 0);
    if (count) parts.push(`${count} ${count === 1 ? one : many}`);
  }
  if (!parts.length) return "Only bookkeeping comes after this turn; rewinding here removes it.";
  const listed = parts.length === 1 ? parts[0] : `${parts.slice(0, -1).join(", ")} and ${parts.at(-1)}`;
  return `Rewinding here removes ${listed}.`;
}

function sentence(text) {
  const trimmed = text.trim();
  const capital = trimmed.charAt(0).toUpperCase() + trimmed.slice(1);
  return /[.!?]$/.test(capital) ? capital : `${capital}.`;
}
