// Files in and out: the Import button, dropping files anywhere on the page,
// avatars beside the characters' names, and the download links of a
// character's card and of a chat. Everything goes through the server's
// HTTP API (docs/protocol.md, "Cards, lorebooks and chats over HTTP") with
// the token this page was opened with.

import { byTestId, fill, h } from "./dom.js";

/** An API address with the page's token (what an <img> or a download link can carry). */
export function apiUrl(path, token, params = {}) {
  const query = new URLSearchParams({ ...params, token });
  return `${path}?${query}`;
}

/** The Import button and drag-and-drop: each file is posted to /api/import on its own. */
export class Importer {
  constructor({ token, showError, onImported }) {
    this.token = token;
    this.showError = showError;
    this.onImported = onImported;
    this.note = byTestId("import-note");
    this.depth = 0; // dragenter/dragleave pairs over nested elements
  }

  wire() {
    const input = byTestId("import-file");
    byTestId("import").addEventListener("click", () => input.click());
    input.addEventListener("change", () => {
      const files = [...input.files];
      input.value = "";
      this.importFiles(files);
    });
    const carriesFiles = (event) => [...(event.dataTransfer?.types ?? [])].includes("Files");
    document.addEventListener("dragenter", (event) => {
      if (!carriesFiles(event)) return;
      this.depth += 1;
      document.body.classList.add("dropping");
    });
    document.addEventListener("dragleave", () => {
      this.depth = Math.max(0, this.depth - 1);
      if (this.depth === 0) document.body.classList.remove("dropping");
    });
    // Without this the browser opens the dropped file in place of the page.
    document.addEventListener("dragover", (event) => {
      if (carriesFiles(event)) event.preventDefault();
    });
    document.addEventListener("drop", (event) => {
      this.depth = 0;
      document.body.classList.remove("dropping");
      const files = [...(event.dataTransfer?.files ?? [])];
      if (files.length === 0) return;
      event.preventDefault();
      this.importFiles(files);
    });
  }

  async importFiles(files) {
    for (const file of files) await this.importOne(file);
  }

  /** Post one file; the server tells every page of what it made, this one included. */
  async importOne(file) {
    this.say(`Importing ${file.name}\u2026`, "busy");
    const stem = file.name.replace(/\.[^.]*$/, "");
    let answer;
    try {
      const response = await fetch(apiUrl("/api/import", this.token, { name: stem }), {
        method: "POST",
        body: file,
      });
      answer = await response.json();
      if (!response.ok) {
        this.say(`${file.name} was not imported.`, "error");
        this.showError({ code: answer.error, message: `${file.name}: ${answer.message}` });
        return;
      }
    } catch (error) {
      this.say(`${file.name} was not imported.`, "error");
      this.showError({ code: "import", message: `${file.name}: ${error.message}` });
      return;
    }
    const made = answer.bot?.name ?? answer.lorebook?.name ?? answer.chat?.title ?? file.name;
    const problems = answer.problems ?? answer.lorebook?.problems ?? [];
    const warning = problems.length ? ` (${problems.length} lore key(s) can never match)` : "";
    this.say(`Imported ${answer.kind} \u201c${made}\u201d${warning}.`, "done", answer.kind);
    this.onImported(answer);
  }

  say(text, state, kind = "") {
    this.note.textContent = text;
    this.note.dataset.state = state;
    this.note.dataset.kind = kind;
  }
}

/**
 * Avatars beside names (timeline turns, the cast), added to whatever the
 * other views draw: a mutation observer decorates new elements, so those
 * views need not know of them. And the download links of the character in
 * the editor and of the open chat.
 */
export class Library {
  constructor({ token, bots }) {
    this.token = token;
    this.bots = bots; // () => Map of id → Bot
  }

  watch(root) {
    // Only what was added is looked at: a streaming beat adds text nodes many
    // times a second, and those are skipped at once.
    const observer = new MutationObserver((records) => {
      for (const record of records) {
        for (const node of record.addedNodes) {
          if (node.nodeType === Node.ELEMENT_NODE) this.decorate(node.parentElement ?? node);
        }
      }
    });
    observer.observe(root, { childList: true, subtree: true });
    this.decorate(root);
  }

  /** Redo every avatar (a bot got one, or lost it). */
  refresh(root = document.body) {
    for (const old of root.querySelectorAll(".avatar")) old.remove();
    this.decorate(root);
  }

  decorate(root) {
    const all = (selector) => [
      ...(root.matches(selector) ? [root] : []),
      ...root.querySelectorAll(selector),
    ];
    for (const head of all(".turn[data-speaker-id] > .turn-head")) {
      this.withAvatar(head, head.parentElement.dataset.speakerId);
    }
    for (const member of all(".cast-member[data-bot-id]")) {
      this.withAvatar(member, member.dataset.botId);
    }
  }

  withAvatar(parent, id) {
    const url = this.bots().get(id)?.avatar_url;
    if (!url || parent.querySelector(":scope > .avatar")) return;
    parent.prepend(
      h("img", { class: "avatar", testid: "avatar", alt: "", src: apiUrl(url, this.token), loading: "lazy" }),
    );
  }

  /** The card downloads of the character in the editor (none for a new one). */
  botLinks(botId) {
    const box = byTestId("bot-downloads");
    box.hidden = !botId;
    if (!botId) return fill(box);
    const link = (kind, label) =>
      h(
        "a",
        {
          class: "card-link",
          testid: `card-${kind}`,
          href: apiUrl(`/api/bots/${encodeURIComponent(botId)}/card.${kind}`, this.token),
          download: "",
          title: `Download the character card (${label})`,
        },
        label,
      );
    return fill(box, "Download the card: ", link("png", "PNG"), link("json", "JSON"));
  }

  /** The open chat's downloads in its header (none when no chat is open). */
  chatLinks(chatId) {
    const box = byTestId("chat-downloads");
    box.hidden = !chatId;
    if (!chatId) return fill(box);
    const link = (file, label, title) =>
      h(
        "a",
        {
          class: "card-link",
          testid: `chat-${file.split(".")[1]}`,
          href: apiUrl(`/api/chats/${encodeURIComponent(chatId)}/${file}`, this.token),
          download: "",
          title,
        },
        label,
      );
    return fill(
      box,
      link("export.jsonl", "JSONL", "Download the chat for SillyTavern (JSONL)"),
      link("transcript.md", "Transcript", "Download a readable transcript (Markdown)"),
    );
  }
}
