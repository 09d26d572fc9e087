// The left-hand panels: the chat list, the form that starts a chat, the
// characters (bots) with their editor, and "you". They read the shared
// `state` and change the world only through `request`.

import { MAX_CAST } from "./cast.js";
import { tint } from "./colour.js";
import { byTestId, fill, h } from "./dom.js";

/**
 * `root` holds the panels; `state` is the app state ({you, bots, chats,
 * chat}); `request(type, fields)` sends a command and resolves with its
 * answer; `openChat(id)` switches the timeline to a chat.
 */
export class Sidebar {
  constructor(root, { state, request, openChat, showError, afterNavigate, onEditBot, hooks = {} }) {
    this.root = root;
    this.onEditBot = onEditBot ?? (() => {}); // told the bot now in the editor (or null)
    // Optional: showCard(bot | null), onHost(bot, group), chatFields() -> extra create_chat fields.
    this.hooks = hooks;
    this.state = state;
    this.request = request;
    this.openChat = openChat;
    this.showError = showError;
    this.afterNavigate = afterNavigate;
    this.editingBot = null; // bot id in the editor, or null for a new one
    this.castPick = new Set(); // bot ids ticked for a new chat's cast, in the order ticked
    this.el = (id) => byTestId(id, root);
    this.wireYou();
    this.wireNewChat();
    this.wireBots();
  }

  /** Redraw everything that depends on bots, chats or you. */
  render() {
    this.renderChats();
    this.renderBots();
    this.renderBotChoices();
    this.renderYou();
  }

  // --- chats ------------------------------------------------------------------

  renderChats() {
    const list = this.el("chat-list");
    const chats = [...this.state.chats].sort((a, b) =>
      String(b.created_at).localeCompare(String(a.created_at)),
    );
    if (chats.length === 0) {
      fill(list, h("li", { class: "muted" }, "No chats yet: start one below."));
      return;
    }
    const openId = this.state.chat?.id;
    fill(
      list,
      ...chats.map((chat) =>
        h(
          "li",
          { testid: "chat-item", class: "chat-item", data: { chatId: chat.id } },
          h(
            "button",
            {
              type: "button",
              class: "chat-open",
              "aria-current": chat.id === openId ? "true" : null,
              onclick: () => {
                this.openChat(chat.id);
                this.afterNavigate();
              },
            },
            h("span", { class: "chat-title" }, chatTitle(chat, this.botName)),
            h(
              "span",
              { class: "chat-sub" },
              chatCast(chat, this.botName),
              chat.location ? ` \u00b7 ${chat.location}` : "",
            ),
          ),
        ),
      ),
    );
  }

  botName = (id) => this.state.bots.get(id)?.name ?? "a departed character";

  wireNewChat() {
    const form = this.el("new-chat-form");
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const host = this.el("new-chat-host").value;
      if (!host) {
        this.showError(new Error("Choose a host character first (or create one below)."));
        return;
      }
      // The cast: the host first, then everyone ticked, in the order ticked.
      const others = [...this.castPick].filter((id) => id !== host && this.state.bots.has(id));
      const fields = { cast: [host, ...others].slice(0, MAX_CAST) };
      const location = this.el("new-chat-location").value.trim();
      const title = this.el("new-chat-title").value.trim();
      if (location) fields.location = location;
      if (title) fields.title = title;
      Object.assign(fields, this.hooks.chatFields?.() ?? {});
      const button = this.el("new-chat-create");
      button.disabled = true;
      try {
        const answer = await this.request("create_chat", fields);
        this.el("new-chat-location").value = "";
        this.el("new-chat-title").value = "";
        this.castPick.clear();
        this.renderBotChoices();
        this.openChat(answer.chat.id);
        this.afterNavigate();
      } catch (error) {
        this.showError(error);
      } finally {
        button.disabled = false;
      }
    });
    this.el("new-chat-host").addEventListener("change", () => this.renderBotChoices());
  }

  /** Fill the host picker and the cast's tick boxes, keeping what was chosen. */
  renderBotChoices() {
    const hostSelect = this.el("new-chat-host");
    const bots = [...this.state.bots.values()].sort((a, b) => a.name.localeCompare(b.name));
    const host = this.state.bots.has(hostSelect.value) ? hostSelect.value : (bots[0]?.id ?? "");
    fill(
      hostSelect,
      bots.length ? null : h("option", { value: "" }, "create a character first"),
      bots.map((bot) => h("option", { value: bot.id, selected: bot.id === host }, bot.name)),
    );
    hostSelect.value = host;
    const others = bots.filter((bot) => bot.id !== host);
    for (const id of this.castPick) {
      if (id === host || !this.state.bots.has(id)) this.castPick.delete(id);
    }
    // The host and 7 more make the largest cast.
    const full = this.castPick.size >= MAX_CAST - 1;
    fill(
      this.el("new-chat-cast-options"),
      others.length ? null : h("li", { class: "muted" }, "nobody else yet (one to one)"),
      others.map((bot) =>
        h(
          "li",
          {},
          tint(
            h(
              "label",
              { class: "cast-option" },
              h("input", {
                type: "checkbox",
                value: bot.id,
                testid: "new-chat-member",
                checked: this.castPick.has(bot.id),
                disabled: full && !this.castPick.has(bot.id),
                onchange: (event) => {
                  if (event.target.checked) this.castPick.add(bot.id);
                  else this.castPick.delete(bot.id);
                  this.renderBotChoices();
                },
              }),
              bot.name,
            ),
            bot.id,
          ),
        ),
      ),
    );
    this.el("new-chat-create").disabled = bots.length === 0;
    this.hooks.onHost?.(this.state.bots.get(host) ?? null, this.castPick.size > 0);
  }

  // --- bots -------------------------------------------------------------------

  renderBots() {
    const list = this.el("bot-list");
    const bots = [...this.state.bots.values()].sort((a, b) => a.name.localeCompare(b.name));
    if (bots.length === 0) {
      fill(list, h("li", { class: "muted" }, "No characters yet: write one below."));
    } else {
      fill(
        list,
        ...bots.map((bot) =>
          h(
            "li",
            { testid: "bot-item", class: "bot-item", data: { botId: bot.id } },
            h(
              "button",
              {
                type: "button",
                class: "bot-open",
                "aria-current": bot.id === this.editingBot ? "true" : null,
                title: `Edit ${bot.name}`,
                onclick: () => this.editBot(bot.id),
              },
              bot.name,
            ),
          ),
        ),
      );
    }
    // The bot being edited may have been deleted elsewhere.
    if (this.editingBot !== null && !this.state.bots.has(this.editingBot)) this.editBot(null);
  }

  /** Load a bot into the editor; null starts a new character. */
  editBot(botId) {
    const bot = botId === null ? null : this.state.bots.get(botId);
    this.editingBot = bot ? bot.id : null;
    this.el("bot-name").value = bot?.name ?? "";
    this.el("bot-persona").value = bot?.persona ?? "";
    this.el("bot-greeting").value = bot?.greeting ?? "";
    this.el("bot-form-title").textContent = bot ? `Editing ${bot.name}` : "New character";
    this.el("bot-save").textContent = bot ? "Save changes" : "Create character";
    this.el("bot-new").hidden = !bot;
    this.el("bot-delete").hidden = !bot;
    this.el("bot-delete-box").hidden = true;
    this.el("bot-note").textContent = "";
    this.onEditBot(this.editingBot);
    for (const button of this.el("bot-list").querySelectorAll(".bot-open")) {
      const current = button.parentElement.dataset.botId === this.editingBot;
      if (current) button.setAttribute("aria-current", "true");
      else button.removeAttribute("aria-current");
    }
    this.hooks.showCard?.(bot ?? null);
    if (bot) this.el("bot-name").focus();
  }

  wireBots() {
    const form = this.el("bot-form");
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const name = this.el("bot-name").value.trim();
      if (!name) {
        this.el("bot-name").focus();
        return;
      }
      const fields = {
        name,
        persona: this.el("bot-persona").value,
        greeting: this.el("bot-greeting").value,
      };
      const save = this.el("bot-save");
      save.disabled = true;
      try {
        if (this.editingBot !== null) {
          await this.request("update_bot", { bot_id: this.editingBot, ...fields });
          this.el("bot-note").textContent = "Saved.";
        } else {
          const answer = await this.request("create_bot", fields);
          this.editBot(null);
          this.el("bot-note").textContent = `${answer.bot.name} is ready to play.`;
        }
      } catch (error) {
        this.showError(error);
      } finally {
        save.disabled = false;
      }
    });
    this.el("bot-new").addEventListener("click", () => this.editBot(null));
    this.el("bot-delete").addEventListener("click", () => {
      const bot = this.state.bots.get(this.editingBot);
      if (!bot) return;
      this.el("bot-delete-text").textContent =
        `Delete ${bot.name}? Chats with ${bot.name} in the cast go on without them.`;
      this.el("bot-delete-box").hidden = false;
      this.el("bot-delete-confirm").focus();
    });
    this.el("bot-delete-cancel").addEventListener("click", () => {
      this.el("bot-delete-box").hidden = true;
    });
    this.el("bot-delete-confirm").addEventListener("click", async () => {
      const botId = this.editingBot;
      if (botId === null) return;
      const confirm = this.el("bot-delete-confirm");
      confirm.disabled = true;
      try {
        await this.request("delete_bot", { bot_id: botId });
        this.state.bots.delete(botId);
        this.editBot(null);
        this.render();
        this.request("list_chats").catch(() => {}); // chats may have lost a cast member
      } catch (error) {
        this.showError(error);
      } finally {
        confirm.disabled = false;
      }
    });
  }

  // --- you --------------------------------------------------------------------

  renderYou() {
    const you = this.state.you;
    const name = this.el("you-name");
    const persona = this.el("you-persona");
    // Don't overwrite what the person is typing.
    if (you && document.activeElement !== name && document.activeElement !== persona && !this.youDirty) {
      name.value = you.name ?? "";
      persona.value = you.persona ?? "";
    }
    this.el("you-display").textContent = you ? you.name : "\u2026";
  }

  wireYou() {
    const form = this.el("you-form");
    this.youDirty = false;
    form.addEventListener("input", () => {
      this.youDirty = true;
    });
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const name = this.el("you-name").value.trim();
      if (!name) {
        this.el("you-name").focus();
        return;
      }
      const save = this.el("you-save");
      save.disabled = true;
      try {
        await this.request("set_you", { name, persona: this.el("you-persona").value });
        this.youDirty = false;
        this.el("you-note").textContent = "Saved.";
      } catch (error) {
        this.showError(error);
      } finally {
        save.disabled = false;
      }
    });
  }
}

/** A chat's title, or its cast when it has none. */
export function chatTitle(chat, botName) {
  return chat.title || chatCast(chat, botName);
}

function chatCast(chat, botName) {
  const cast = Array.isArray(chat.cast) && chat.cast.length
    ? chat.cast
    : [chat.host_bot_id, chat.guest_bot_id].filter((id) => id);
  const names = cast.map((id) => botName(id));
  return names.length > 1 ? `${names.slice(0, -1).join(", ")} & ${names.at(-1)}` : (names[0] ?? "");
}
