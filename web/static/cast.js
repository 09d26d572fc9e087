// The cast panel: who is in the open chat's cast, each in their own colour,
// who of them is in the scene now (present or away), and the controls to
// add a character, remove one, or (when the server knows muting) mute one and
// pick who answers the next turn ("reply as", kept by the composer).
// It draws from the chat model and changes the cast only through `command`.

import { tint } from "./colour.js";
import { byTestId, fill, h } from "./dom.js";

/** The protocol's largest cast. */
export const MAX_CAST = 8;

/**
 * `root` holds the panel (found by data-testid inside it). `bots()` returns
 * the map of every character; `command(type, fields)` sends a cast command
 * for the open chat and resolves with its answer; `replyAs()` is the bot id
 * that answers the next turn ("" for anyone) and `chooseReplyAs(id)` sets it.
 */
export class CastPanel {
  constructor(root, { names, bots, command, showError, replyAs, chooseReplyAs }) {
    this.names = names;
    this.bots = bots;
    this.command = command;
    this.showError = showError;
    this.replyAs = replyAs;
    this.chooseReplyAs = chooseReplyAs;
    this.chat = null;
    this.list = byTestId("cast", root);
    this.form = byTestId("cast-add-form", root);
    this.select = byTestId("cast-add-bot", root);
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      if (this.select.value) this.run(byTestId("cast-add", this.form), "add_to_cast", this.select.value);
    });
  }

  /** Draw the cast of `chat` (null: no chat open). */
  render(chat) {
    this.chat = chat;
    this.form.hidden = !chat?.info;
    if (!chat?.info) return fill(this.list);
    const cast = chat.botIds();
    const alone = cast.filter((id) => chat.isPresent(id)).length <= 1;
    fill(this.list, ...cast.map((botId, index) => this.member(chat, botId, index === 0, alone)));
    const others = [...this.bots().values()]
      .filter((bot) => !cast.includes(bot.id))
      .sort((a, b) => a.name.localeCompare(b.name));
    const full = cast.length >= MAX_CAST;
    fill(
      this.select,
      others.length && !full ? null : h("option", { value: "" }, full ? "the cast is full" : "nobody else yet"),
      full ? null : others.map((bot) => h("option", { value: bot.id }, bot.name)),
    );
    this.select.disabled = full || others.length === 0;
    byTestId("cast-add", this.form).disabled = this.select.disabled;
  }

  member(chat, botId, host, alone) {
    const present = chat.isPresent(botId);
    const muted = chat.isMuted(botId);
    const name = this.names(botId);
    const presence = h(
      "button",
      {
        type: "button",
        class: "quiet cast-toggle",
        testid: "cast-presence",
        "aria-pressed": present ? "true" : "false",
        // The last one present cannot leave: the scene would be empty.
        disabled: present && alone,
        title: present ? `${name} is in the scene: send them away` : `${name} is away: bring them in`,
        onclick: () => this.run(presence, present ? "leave_scene" : "enter_scene", botId),
      },
      present ? "Present" : "Away",
    );
    const mute = chat.supportsMute()
      ? h(
          "button",
          {
            type: "button",
            class: "quiet cast-toggle",
            testid: "cast-mute",
            "aria-pressed": muted ? "true" : "false",
            title: muted ? `Let ${name} speak again` : `Keep ${name} silent until unmuted`,
            onclick: () => this.run(mute, muted ? "unmute" : "mute", botId),
          },
          muted ? "Muted" : "Mute",
        )
      : null;
    // Only one present can be made to answer; a second click lets the story decide again.
    const chosen = this.replyAs() === botId;
    const replyAs =
      chat.supportsMute() && present
        ? h(
            "button",
            {
              type: "button",
              class: "quiet cast-toggle",
              testid: "cast-reply-as",
              "aria-pressed": chosen ? "true" : "false",
              title: chosen ? "Let the story decide who answers" : `${name} answers your next turn`,
              onclick: () => this.chooseReplyAs(chosen ? "" : botId),
            },
            "Reply as",
          )
        : null;
    // The host stays in the cast (the server refuses to remove it).
    const remove = host
      ? null
      : h(
          "button",
          {
            type: "button",
            class: "quiet danger-text cast-remove",
            testid: "cast-remove",
            "aria-label": `Remove ${name} from the cast`,
            title: `Remove ${name} from the cast`,
            onclick: () => this.run(remove, "remove_from_cast", botId),
          },
          "\u00d7",
        );
    return h(
      "li",
      {
        class: `cast-member${present ? "" : " cast-member--away"}`,
        testid: "cast-member",
        data: { botId, present: present ? "true" : "false", muted: muted ? "true" : "false" },
      },
      tint(h("span", { class: "cast-swatch", "aria-hidden": "true" }), botId),
      tint(h("span", { class: "speaker cast-name" }, name), botId),
      host ? h("span", { class: "turn-note" }, "host") : null,
      h("span", { class: "cast-actions" }, presence, mute, replyAs, remove),
    );
  }

  /** Send one cast command; the `presence` and `chat` messages redraw the panel. */
  async run(button, type, botId) {
    button.disabled = true;
    try {
      await this.command(type, botId);
    } catch (error) {
      this.showError(error);
    } finally {
      if (button.isConnected) button.disabled = false;
    }
  }
}
