// Steering a chat: the lorebooks attached to it and its author's note.
//
// A panel of the story drawer. The lorebooks listed are every imported
// book (list_lorebooks), each with a box that attaches it to the open chat
// or takes it off; the author's note goes near the end of every
// character's prompt, `depth` messages from the end.

import { byTestId, fill, h } from "./dom.js";

export const NOTE_DEPTH = 4;
export const MAX_NOTE_DEPTH = 100;

export class LorePanel {
  /**
   * `root` is the story drawer; `request(type, fields)` sends a command;
   * `chat()` is the open chat (or null).
   */
  constructor(root, { request, chat, showError }) {
    this.request = request;
    this.chat = chat;
    this.showError = showError;
    this.books = []; // every imported lorebook: {lorebook_id, name, format, entries}
    this.attached = []; // ids attached to the open chat, in the order attached
    this.note = null; // {text, depth} or null
    this.panel = h(
      "details",
      { class: "panel", open: true, testid: "steering" },
      h("summary", {}, "Lore and author's note"),
      h("ul", { class: "lorebooks", testid: "lorebooks" }),
      h(
        "form",
        { class: "stack", testid: "author-note-form", autocomplete: "off" },
        h(
          "label",
          {},
          "Author's note ",
          h("span", { class: "muted" }, "(every character reads it; empty removes it)"),
          h("textarea", { testid: "author-note-text", maxlength: "4000", rows: "3" }),
        ),
        h(
          "label",
          {},
          "Messages from the end ",
          h("input", {
            type: "number",
            testid: "author-note-depth",
            min: "0",
            max: String(MAX_NOTE_DEPTH),
            value: String(NOTE_DEPTH),
          }),
        ),
        h(
          "div",
          { class: "row" },
          h("button", { type: "submit", testid: "author-note-save" }, "Save note"),
          h("span", { class: "note", testid: "author-note-status", "aria-live": "polite" }),
        ),
      ),
    );
    root.append(this.panel);
    this.el = (id) => byTestId(id, this.panel);
    this.el("author-note-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.saveNote();
    });
  }

  /** A fresh chat_state: what the chat has attached, and its note. */
  applyState(msg) {
    this.attached = msg.lorebooks ?? [];
    this.note = msg.author_note ?? null;
    this.fillNote();
    this.render();
  }

  /** A `chat_lorebooks` message: the chat's books now. */
  applyLorebooks(msg) {
    this.attached = msg.lorebooks ?? [];
    this.render();
  }

  /** An `author_note` message: the chat's note now (an empty text: none). */
  applyNote(msg) {
    this.note = msg.text ? { text: msg.text, depth: msg.depth } : null;
    this.fillNote();
  }

  /** Ask for every imported lorebook (on connect, and after an import). */
  async refreshBooks() {
    try {
      const answer = await this.request("list_lorebooks");
      this.books = answer.lorebooks ?? [];
      this.render();
    } catch (error) {
      this.showError(error);
    }
  }

  /** A lorebook was imported or changed somewhere: list it. */
  applyBook(book) {
    this.books = [...this.books.filter((b) => b.lorebook_id !== book.lorebook_id), book];
    this.render();
  }

  fillNote() {
    this.el("author-note-text").value = this.note?.text ?? "";
    this.el("author-note-depth").value = String(this.note?.depth ?? NOTE_DEPTH);
  }

  render() {
    const chat = this.chat();
    this.panel.hidden = !chat;
    const list = this.el("lorebooks");
    if (!this.books.length) {
      fill(list, h("li", { class: "muted" }, "No lorebooks yet: import one."));
      return;
    }
    fill(
      list,
      ...this.books
        .slice()
        .sort((a, b) => a.name.localeCompare(b.name))
        .map((book) =>
          h(
            "li",
            { testid: "lorebook-item", data: { lorebookId: book.lorebook_id } },
            h(
              "label",
              {},
              h("input", {
                type: "checkbox",
                testid: "lorebook-attached",
                checked: this.attached.includes(book.lorebook_id),
                disabled: !chat,
                onchange: (event) => this.toggle(book, event.target),
              }),
              `${book.name} `,
              h("span", { class: "muted" }, `(${book.entries} entries)`),
            ),
          ),
        ),
    );
  }

  async toggle(book, box) {
    const chat = this.chat();
    if (!chat) return;
    const type = box.checked ? "attach_lorebook" : "detach_lorebook";
    box.disabled = true;
    try {
      await this.request(type, { chat_id: chat.id, lorebook_id: book.lorebook_id });
    } catch (error) {
      box.checked = !box.checked;
      this.showError(error);
    } finally {
      box.disabled = false;
    }
  }

  async saveNote() {
    const chat = this.chat();
    if (!chat) return;
    const depth = Number.parseInt(this.el("author-note-depth").value, 10);
    const button = this.el("author-note-save");
    button.disabled = true;
    try {
      await this.request("set_author_note", {
        chat_id: chat.id,
        text: this.el("author-note-text").value,
        depth: Number.isFinite(depth) ? depth : NOTE_DEPTH,
      });
      this.el("author-note-status").textContent = "Saved.";
    } catch (error) {
      this.showError(error);
    } finally {
      button.disabled = false;
    }
  }
}
