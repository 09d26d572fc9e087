// The sampling panel: a chat's own temperature, top-p, min-p, repetition
// penalty and longest answer (`update_chat_settings`). An empty field is the
// server's default; the server bounds every value and says which is wrong.

import { byTestId } from "./dom.js";

/** The settings, in the order the panel shows them, with the bounds the server keeps. */
export const SETTINGS = [
  { name: "temperature", min: 0, max: 2, step: 0.05 },
  { name: "top_p", min: 0.01, max: 1, step: 0.01 },
  { name: "min_p", min: 0, max: 1, step: 0.01 },
  { name: "repeat_penalty", min: 1, max: 2, step: 0.01 },
  { name: "max_tokens", min: 16, max: 2048, step: 1 },
];

/**
 * `root` holds the panel's form; `save(changes)` sends them and resolves
 * with the chat's settings now.
 */
export class SettingsPanel {
  constructor(root, { save, showError }) {
    this.save = save;
    this.showError = showError;
    this.chat = null;
    this.form = byTestId("settings-form", root);
    this.note = byTestId("settings-note", root);
    this.inputs = new Map(SETTINGS.map((s) => [s.name, byTestId(`setting-${s.name}`, root)]));
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.submit();
    });
  }

  /** Show `chat`'s settings (null: no chat open). */
  render(chat) {
    this.chat = chat;
    this.form.hidden = !chat;
    if (!chat) return;
    const settings = chat.settings ?? {};
    for (const [name, input] of this.inputs) {
      const value = settings[name];
      input.value = value === null || value === undefined ? "" : String(value);
    }
    this.note.textContent = "";
  }

  async submit() {
    const chat = this.chat;
    if (!chat) return;
    const changes = {};
    for (const [name, input] of this.inputs) {
      if (input.value.trim() === "") continue;
      const value = Number(input.value);
      if (value !== (chat.settings ?? {})[name]) changes[name] = value;
    }
    const button = byTestId("settings-save", this.form);
    button.disabled = true;
    try {
      const answer = await this.save(changes);
      if (this.chat !== chat) return;
      chat.settings = answer.settings;
      this.render(chat);
      this.note.textContent = "Saved: the next answer uses these.";
    } catch (error) {
      this.showError(error);
    } finally {
      button.disabled = false;
    }
  }
}
