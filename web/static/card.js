// A character's card: read and edit its main fields, and pick the greeting
// a new chat opens with.
//
// The card is read from the card export (`/api/bots/{id}/card.json`, V3
// JSON) and edited with `update_card`, which keeps every other field of
// it. Only bots made from a card (`bot.card`) have one.

import { byTestId, fill, h } from "./dom.js";

/** The fields the card view shows and edits, with their labels. */
export const CARD_FIELDS = [
  ["description", "Description", 5],
  ["personality", "Personality", 3],
  ["scenario", "Scenario", 3],
  ["first_mes", "First message", 3],
  ["mes_example", "Example dialogue (<START> between examples)", 5],
  ["system_prompt", "System prompt ({{original}} is troupe's own)", 2],
  ["post_history_instructions", "After the dialogue ({{original}} is troupe's own)", 2],
];

/** The card a bot was made from, as V3 JSON; null when it has none. */
export async function fetchCard(botId, token) {
  const url = `/api/bots/${encodeURIComponent(botId)}/card.json?token=${encodeURIComponent(token)}`;
  const response = await fetch(url, { headers: { Accept: "application/json" } });
  if (!response.ok) return null;
  const doc = await response.json();
  return doc?.data ?? doc;
}

export class CardView {
  /** `form` is the character editor; the view is added to its end. */
  constructor(form, { request, token, showError, saved }) {
    this.request = request;
    this.token = token;
    this.showError = showError;
    this.saved = saved;
    this.botId = null;
    this.box = h(
      "fieldset",
      { class: "stack card-view", testid: "card-view", hidden: true },
      h("legend", {}, "Character card"),
      ...CARD_FIELDS.map(([name, label, rows]) =>
        h("label", {}, label, h("textarea", { testid: `card-${name}`, rows: String(rows) })),
      ),
      h(
        "div",
        { class: "row" },
        h("button", { type: "button", testid: "card-save", onclick: () => this.save() }, "Save card"),
        h("span", { class: "note", testid: "card-note", "aria-live": "polite" }),
      ),
    );
    form.append(this.box);
  }

  /** Show a bot's card (or hide the view for a bot without one, or a new bot). */
  async show(bot) {
    this.botId = bot?.card ? bot.id : null;
    this.box.hidden = true;
    byTestId("card-note", this.box).textContent = "";
    if (!this.botId) return;
    const wanted = this.botId;
    try {
      const data = await fetchCard(wanted, this.token);
      if (this.botId !== wanted || !data) return;
      for (const [name] of CARD_FIELDS) {
        byTestId(`card-${name}`, this.box).value = typeof data[name] === "string" ? data[name] : "";
      }
      this.box.hidden = false;
    } catch (error) {
      this.showError(error);
    }
  }

  async save() {
    if (!this.botId) return;
    const fields = { bot_id: this.botId };
    for (const [name] of CARD_FIELDS) fields[name] = byTestId(`card-${name}`, this.box).value;
    const button = byTestId("card-save", this.box);
    button.disabled = true;
    try {
      const answer = await this.request("update_card", fields);
      byTestId("card-note", this.box).textContent = "Card saved.";
      this.saved?.(answer.bot);
    } catch (error) {
      this.showError(error);
    } finally {
      button.disabled = false;
    }
  }
}

/** The greeting picker of the new-chat form: shown when the host's card has alternatives. */
export class GreetingPicker {
  constructor(form, { token, showError }) {
    this.token = token;
    this.showError = showError;
    this.hostId = null;
    this.select = h("select", { testid: "new-chat-greeting" });
    this.label = h("label", { hidden: true, testid: "new-chat-greeting-label" }, "Greeting ", this.select);
    const submit = byTestId("new-chat-create", form);
    submit.before(this.label);
  }

  /** The host (a bot) or the cast size changed: offer its card's greetings, if several. */
  async show(host, group) {
    this.hostId = host?.id ?? null;
    if (!host?.card) {
      this.label.hidden = true;
      fill(this.select);
      return;
    }
    const wanted = host.id;
    try {
      const data = await fetchCard(wanted, this.token);
      if (this.hostId !== wanted || !data) return;
      const options = [data.first_mes, ...(data.alternate_greetings ?? [])];
      if (group) options.push(...(data.group_only_greetings ?? []));
      fill(
        this.select,
        options.map((text, index) =>
          h("option", { value: String(index) }, `${index + 1}. ${String(text ?? "").slice(0, 80)}`),
        ),
      );
      this.label.hidden = options.length < 2;
    } catch (error) {
      this.showError(error);
    }
  }

  /** The `greeting` field for create_chat, or nothing. */
  fields() {
    if (this.label.hidden || !this.select.value) return {};
    return { greeting: Number.parseInt(this.select.value, 10) };
  }
}
