/*
 * The clinic's chat widget: one <script> tag puts a chat bubble on any page.
 *
 *   <script src="https://assistant.clinic.example/widget/widget.js" defer
 *           data-clinic-name="Birchwood" data-color="#0b5563" data-position="right" data-language="en"></script>
 *
 * or, before the tag, window.ClinicAssistant = {clinicName, color, position, language, api}.
 *
 * It talks to the public chat API of the server it came from (POST /api/chat, GET and DELETE
 * /api/conversations/{id}) and keeps only the session the server issued (its id and token) in this site's
 * localStorage, never a word of the conversation: a reload fetches the conversation again. Every text it
 * shows comes from the server (/widget/config, from the clinic's replies file) or from the API.
 *
 * Safe rendering: text always goes in as text (textContent, createTextNode); links are made only for
 * http(s) addresses and the clinic's own phone numbers, and checked again as URLs before use.
 */
(function () {
  "use strict";

  var script = document.currentScript;
  if (!script || window.__clinicAssistant) return;
  window.__clinicAssistant = true;

  var given = window.ClinicAssistant || {};
  var data = script.dataset;
  var options = {
    clinicName: given.clinicName || data.clinicName || "",
    color: given.color || data.color || "",
    position: (given.position || data.position) === "left" ? "left" : "right",
    language: given.language || data.language || document.documentElement.lang || "en",
  };
  var here = new URL(script.src, document.baseURI);
  var api = new URL(given.api || data.api || "../", here); // the app's root: /widget/widget.js -> /
  var STORE = "clinic-assistant:" + api.origin + api.pathname;
  var LEVEL = { none: 0, routine: 1, urgent: 2, emergency: 3 };

  var config; // from /widget/config
  var ui = {}; // the elements
  var state = {
    session: readSession(),
    open: false,
    busy: false,
    handedOff: false,
    lastId: 0,
    level: "none",
    alerted: false,
    pollTimer: 0,
    pollFailures: 0,
    unread: 0,
  };

  // --- the session (id + token) is all this device keeps --------------------------------------------
  function readSession() {
    try {
      var saved = JSON.parse(window.localStorage.getItem(STORE) || "null");
      return saved && typeof saved.id === "string" && typeof saved.token === "string" ? saved : null;
    } catch (error) {
      return null;
    }
  }

  function keepSession(session) {
    state.session = session;
    try {
      if (session) window.localStorage.setItem(STORE, JSON.stringify(session));
      else window.localStorage.removeItem(STORE);
    } catch (error) {
      /* storage refused (private mode): the session lasts as long as the page */
    }
  }

  function t(name, values) {
    var text = config.texts[name];
    if (typeof text !== "string") return "";
    var facts = { clinic_name: options.clinicName || config.clinic.name };
    if (values) for (var key in values) facts[key] = values[key];
    return text.replace(/\{(\w+)\}/g, function (whole, key) {
      return Object.prototype.hasOwnProperty.call(facts, key) ? facts[key] : whole;
    });
  }

  // --- the API --------------------------------------------------------------------------------------
  function request(method, path, body) {
    var headers = { Accept: "application/json" };
    if (body) headers["Content-Type"] = "application/json";
    if (state.session) headers["X-Session-Token"] = state.session.token;
    return fetch(new URL(path, api), {
      method: method,
      headers: headers,
      body: body ? JSON.stringify(body) : undefined,
      credentials: "omit",
      cache: "no-store",
    }).then(function (response) {
      if (response.status === 204) return { status: 204, body: null, response: response };
      return response
        .json()
        .catch(function () {
          return null;
        })
        .then(function (json) {
          return { status: response.status, body: json, response: response };
        });
    });
  }

  function conversationPath(suffix) {
    return "api/conversations/" + encodeURIComponent(state.session.id) + (suffix || "");
  }

  // --- building elements (text only ever as text) ---------------------------------------------------
  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text) node.textContent = text;
    return node;
  }

  function button(className, label, onClick) {
    var node = el("button", className, label);
    node.type = "button";
    node.addEventListener("click", onClick);
    return node;
  }

  function safeHref(candidate) {
    try {
      var url = new URL(candidate);
      return url.protocol === "https:" || url.protocol === "http:" || url.protocol === "tel:" ? url.href : null;
    } catch (error) {
      return null;
    }
  }

  function escapeRegExp(text) {
    return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  }

  var linkPattern; // http(s) addresses and the clinic's own numbers, built once the config is known

  function buildLinkPattern() {
    var numbers = [config.clinic.phone, config.clinic.emergency_number].filter(Boolean).map(escapeRegExp);
    linkPattern = new RegExp(["https?:\\/\\/[^\\s<>\"']+"].concat(numbers).join("|"), "g");
  }

  function wordAt(text, index) {
    return index >= 0 && index < text.length && /\w/.test(text.charAt(index));
  }

  function telFor(number) {
    if (number === config.clinic.phone) return config.clinic.phone_uri;
    if (number === config.clinic.emergency_number) return config.clinic.emergency_uri;
    return null;
  }

  /* Append `text` to `parent` as text nodes, with its web addresses and the clinic's numbers as links. */
  function appendLinked(parent, text) {
    var last = 0;
    text.replace(linkPattern, function (match, offset) {
      var shown = match;
      var href;
      if (/^https?:/i.test(match)) {
        shown = match.replace(/[.,;:!?)\]]+$/, "");
        href = safeHref(shown);
      } else if (!wordAt(text, offset - 1) && !wordAt(text, offset + match.length)) {
        href = safeHref(telFor(match)); // "911" alone, never inside "19112"
      }
      if (!href) return match;
      parent.appendChild(document.createTextNode(text.slice(last, offset)));
      var link = el("a", "ca-link", shown);
      link.href = href;
      if (!href.startsWith("tel:")) {
        link.target = "_blank";
        link.rel = "noopener noreferrer";
      }
      parent.appendChild(link);
      last = offset + shown.length;
      return match;
    });
    parent.appendChild(document.createTextNode(text.slice(last)));
  }

  // --- the messages ----------------------------------------------------------------------------------
  function senderLabel(sender) {
    return t(sender === "patient" ? "you" : sender === "staff" ? "staff" : "assistant");
  }

  /* One message: paragraphs, its sources as footnotes, its quick-reply buttons. */
  function renderMessage(message, how) {
    var sender = message.sender || "assistant";
    var item = el("div", "ca-msg ca-msg--" + sender);
    if (sender !== "patient") {
      item.classList.add("ca-kind-" + (message.kind || "answer"));
      if (message.kind === "escalation" && LEVEL[message.triage] >= LEVEL.urgent) {
        item.classList.add("ca-triage-" + message.triage);
      }
    }
    if (message.id) item.dataset.id = String(message.id);
    var who = el("span", "ca-who", senderLabel(sender));
    item.appendChild(who);
    var body = el("div", "ca-text");
    var sources = message.sources || [];
    var citations = Object.create(null); // no inherited keys: a paragraph "constructor" is text
    sources.forEach(function (source) {
      citations[t("citation", { title: source.title })] = source;
    });
    var cited = [];
    String(message.text || "")
      .split(/\n{2,}/)
      .forEach(function (paragraph) {
        var trimmed = paragraph.trim();
        if (!trimmed) return;
        if (sources.length && citations[trimmed]) {
          cited.push(trimmed);
          return;
        }
        var p = el("p");
        appendLinked(p, trimmed);
        body.appendChild(p);
      });
    item.appendChild(body);
    if (sources.length) {
      // The article the answer quotes, as its footnote (the API's own "Source: <title>" line).
      var notes = el("div", "ca-sources");
      (cited.length
        ? cited
        : sources.map(function (source) {
            return t("citation", { title: source.title });
          })
      ).forEach(function (line) {
        notes.appendChild(el("p", "ca-source", line));
      });
      item.appendChild(notes);
    }
    if (message.buttons && message.buttons.length && !(how && how.history)) {
      var group = el("div", "ca-buttons");
      group.setAttribute("role", "group");
      group.setAttribute("aria-label", t("suggestions"));
      message.buttons.forEach(function (choice) {
        group.appendChild(
          button("ca-choice", choice.title, function () {
            send(choice.payload); // shown as it is sent and kept, so a reload shows the same
          })
        );
      });
      item.appendChild(group);
    }
    ui.log.appendChild(item);
    return item;
  }

  function renderNotice(text, className) {
    var item = el("div", "ca-msg ca-notice " + (className || ""));
    item.appendChild(el("p", null, text));
    ui.log.appendChild(item);
    scrollToEnd();
    return item;
  }

  function clearChoices() {
    ui.log.querySelectorAll(".ca-buttons").forEach(function (group) {
      group.remove();
    });
  }

  function scrollToEnd() {
    ui.log.scrollTop = ui.log.scrollHeight;
  }

  /* Scroll so that `item` starts at the top of the conversation (or as far as it goes): a long answer is
   * read from its first line, with the question just above it. */
  function reveal(item) {
    ui.log.scrollTop = Math.min(item.offsetTop - 12, ui.log.scrollHeight - ui.log.clientHeight);
  }

  function greet() {
    if (!ui.log.querySelector(".ca-msg")) renderNotice(t("greeting"), "ca-greeting");
  }

  // --- the pinned alert: urgent and emergency triage ---------------------------------------------------
  function noteTriage(messages) {
    messages.forEach(function (message) {
      if (message.sender && message.sender !== "assistant") return;
      if (LEVEL[message.triage] > LEVEL[state.level]) state.level = message.triage;
      // Staff were alerted only when the API says so for that very message.
      if (message.kind === "escalation" && message.alerted === true) state.alerted = true;
    });
    showAlert();
  }

  function showAlert() {
    var level = state.level;
    if (LEVEL[level] < LEVEL.urgent) {
      ui.alert.hidden = true;
      ui.alert.className = "ca-alert";
      return;
    }
    var emergency = level === "emergency";
    ui.alert.className = "ca-alert ca-alert--" + level;
    ui.alertTitle.textContent = t(emergency ? "alert_emergency" : "alert_urgent");
    ui.alertCall.textContent = t(emergency ? "call_emergency" : "call_clinic");
    ui.alertCall.href = safeHref(emergency ? config.clinic.emergency_uri : config.clinic.phone_uri) || "#";
    ui.alertNotified.textContent = state.alerted ? t("notified") : "";
    ui.alertNotified.hidden = !state.alerted;
    ui.alert.hidden = false;
  }

  // --- sending -------------------------------------------------------------------------------------
  function send(text) {
    text = String(text || "").trim();
    if (!text || state.busy) return;
    state.busy = true;
    ui.send.disabled = true;
    ui.input.value = "";
    fitInput();
    clearChoices();
    var mine = renderMessage({ sender: "patient", text: text });
    typing(true);
    scrollToEnd();
    post(text, mine, true)
      .then(function (outcome) {
        if (outcome.kind === "answered") return;
        mine.classList.add("ca-unanswered");
        var notice = renderNotice(outcome.text, "ca-problem");
        if (outcome.restore && !ui.input.value) {
          notice.appendChild(el("p", null, t("not_sent")));
          ui.input.value = text;
          fitInput();
        }
      })
      .then(function () {
        typing(false);
        state.busy = false;
        ui.send.disabled = false;
        schedulePoll();
        reveal(mine);
      });
  }

  /* One message to the API; what became of it (answered, or the text to show instead). */
  function post(text, mine, mayRestart) {
    var body = { session_id: state.session ? state.session.id : null, text: text };
    return request("POST", "api/chat", body).then(
      function (result) {
        var reply = result.body || {};
        if (result.status === 200) {
          if (reply.session_token) keepSession({ id: reply.session_id, token: reply.session_token });
          var messages = (reply.messages || []).map(function (message) {
            return Object.assign({ sender: "assistant" }, message);
          });
          typing(false);
          messages.forEach(function (message) {
            renderMessage(message);
          });
          noteTriage(messages);
          // Staff have the conversation now: look for their replies often, not only now and then.
          if (messages.some(function (message) { return message.kind === "handoff"; })) state.handedOff = true;
          return { kind: "answered" };
        }
        if (result.status === 401 && mayRestart) {
          // The chat ended or expired: this message must still get through (it may be a red flag).
          keepSession(null);
          resetConversation();
          renderNotice(t("session_restarted"), "ca-problem");
          ui.log.appendChild(mine);
          typing(true);
          return post(text, mine, false);
        }
        var detail = reply && typeof reply.detail === "string" ? reply.detail : "";
        if (result.status === 429) return { kind: "refused", text: detail || t("slow_down"), restore: true };
        if (result.status === 422 && detail) return { kind: "refused", text: detail, restore: true };
        return { kind: "failed", text: t("offline"), restore: true };
      },
      function () {
        return { kind: "failed", text: t("offline"), restore: true };
      }
    );
  }

  function typing(on) {
    ui.typing.hidden = !on;
    ui.status.textContent = on ? t("typing") : "";
    if (on) ui.log.appendChild(ui.typing);
  }

  // --- the conversation again after a reload, and staff replies during a handoff ----------------------
  function loadConversation() {
    if (!state.session) return Promise.resolve();
    return request("GET", conversationPath("/messages?after=0")).then(
      function (result) {
        if (result.status === 401) {
          keepSession(null);
          return;
        }
        if (result.status !== 200 || !result.body) return;
        var messages = result.body.messages || [];
        state.handedOff = !!result.body.handed_off;
        ui.log.setAttribute("aria-busy", "true"); // one announcement for the reloaded conversation
        ui.log.querySelectorAll(".ca-greeting").forEach(function (node) {
          node.remove();
        });
        messages.forEach(function (message) {
          renderMessage(message, { history: true });
          state.lastId = Math.max(state.lastId, message.id);
        });
        ui.log.setAttribute("aria-busy", "false");
        noteTriage(messages);
        scrollToEnd();
      },
      function () {
        /* offline: the conversation shows once the patient sends again or reopens */
      }
    );
  }

  function schedulePoll() {
    window.clearTimeout(state.pollTimer);
    if (!state.session || !(state.open || state.handedOff)) return;
    var seconds = state.handedOff ? config.poll_seconds.handed_off : config.poll_seconds.idle;
    seconds *= Math.pow(2, Math.min(state.pollFailures, 4));
    if (document.hidden) seconds = Math.max(seconds, 60);
    state.pollTimer = window.setTimeout(poll, seconds * 1000);
  }

  function poll() {
    var asked = state.session;
    if (!asked) return;
    request("GET", conversationPath("/messages?after=" + state.lastId)).then(
      function (result) {
        if (state.session !== asked) return; // the chat was ended or restarted meanwhile
        if (result.status === 401) {
          keepSession(null);
          resetConversation();
          renderNotice(t("session_expired"), "ca-problem");
          return;
        }
        if (result.status !== 200 || !result.body) {
          state.pollFailures += 1;
          schedulePoll();
          return;
        }
        state.pollFailures = 0;
        state.handedOff = !!result.body.handed_off;
        (result.body.messages || []).forEach(function (message) {
          state.lastId = Math.max(state.lastId, message.id);
          // The patient's own messages and the assistant's replies came with POST /api/chat.
          if (message.sender !== "staff" || ui.log.querySelector('[data-id="' + message.id + '"]')) return;
          reveal(renderMessage(message));
          if (!state.open) markUnread();
        });
        schedulePoll();
      },
      function () {
        state.pollFailures += 1;
        schedulePoll();
      }
    );
  }

  function markUnread() {
    state.unread += 1;
    ui.badge.textContent = String(state.unread);
    ui.badge.hidden = false;
    ui.bubble.setAttribute("aria-label", t("open") + ". " + t("new_reply"));
  }

  // --- ending the chat: gone from the server's sessions and from this device ---------------------------
  function askToEnd() {
    ui.confirm.hidden = false;
    ui.confirmYes.focus();
  }

  function cancelEnd() {
    ui.confirm.hidden = true;
    ui.endChat.focus();
  }

  function endChat() {
    var ending = state.session ? request("DELETE", conversationPath()) : Promise.resolve({ status: 204 });
    ending.then(
      function (result) {
        if (result.status !== 204 && result.status !== 401) {
          renderNotice(t("offline"), "ca-problem");
          return;
        }
        keepSession(null);
        resetConversation();
        ui.confirm.hidden = true;
        renderNotice(t("ended"), "ca-ended");
        ui.input.focus();
      },
      function () {
        renderNotice(t("offline"), "ca-problem");
      }
    );
  }

  function resetConversation() {
    window.clearTimeout(state.pollTimer);
    state.handedOff = false;
    state.lastId = 0;
    state.level = "none";
    state.alerted = false;
    ui.log.querySelectorAll(".ca-msg").forEach(function (node) {
      node.remove();
    });
    showAlert();
  }

  // --- opening, closing, keyboard -------------------------------------------------------------------
  function openPanel() {
    state.open = true;
    state.unread = 0;
    ui.badge.hidden = true;
    ui.bubble.setAttribute("aria-label", t("open"));
    ui.bubble.setAttribute("aria-expanded", "true");
    ui.panel.hidden = false;
    ui.bubble.hidden = true;
    greet();
    scrollToEnd();
    ui.input.focus();
    schedulePoll();
  }

  function closePanel() {
    state.open = false;
    ui.panel.hidden = true;
    ui.confirm.hidden = true;
    ui.bubble.hidden = false;
    ui.bubble.setAttribute("aria-expanded", "false");
    ui.bubble.focus();
    schedulePoll();
  }

  function focusables() {
    return Array.prototype.filter.call(
      ui.panel.querySelectorAll("button, [href], textarea, input, [tabindex]:not([tabindex='-1'])"),
      function (node) {
        return !node.disabled && !node.closest("[hidden]") && node.getClientRects().length > 0;
      }
    );
  }

  /* While the chat is open, Tab and Shift+Tab stay inside it and Escape closes it. */
  function onPanelKey(event) {
    if (event.key === "Escape") {
      event.preventDefault();
      if (!ui.confirm.hidden) cancelEnd();
      else closePanel();
      return;
    }
    if (event.key !== "Tab") return;
    var nodes = focusables();
    if (!nodes.length) return;
    var active = ui.shadow.activeElement;
    var index = nodes.indexOf(active);
    var next = event.shiftKey ? index - 1 : index + 1;
    if (index === -1) next = event.shiftKey ? nodes.length - 1 : 0;
    if (next < 0) next = nodes.length - 1;
    if (next >= nodes.length) next = 0;
    event.preventDefault();
    nodes[next].focus();
  }

  function fitInput() {
    ui.input.style.height = "auto";
    ui.input.style.height = Math.min(ui.input.scrollHeight, 120) + "px";
  }

  // --- colours a clinic chooses still meet WCAG AA ------------------------------------------------------
  function luminance(hex) {
    var channels = [1, 3, 5].map(function (start) {
      var value = parseInt(hex.slice(start, start + 2), 16) / 255;
      return value <= 0.03928 ? value / 12.92 : Math.pow((value + 0.055) / 1.055, 2.4);
    });
    return 0.2126 * channels[0] + 0.7152 * channels[1] + 0.0722 * channels[2];
  }

  function contrast(a, b) {
    var high = Math.max(a, b);
    var low = Math.min(a, b);
    return (high + 0.05) / (low + 0.05);
  }

  function applyColour(root) {
    var colour = String(options.color).trim();
    if (/^#[0-9a-f]{3}$/i.test(colour)) colour = "#" + colour.slice(1).replace(/./g, "$&$&");
    if (!/^#[0-9a-f]{6}$/i.test(colour)) return;
    var light = luminance(colour);
    // White or near-black text on the clinic's colour, whichever reads better (one always reaches 4.5:1).
    var onColour = contrast(light, 1) >= contrast(light, luminance("#111111")) ? "#ffffff" : "#111111";
    root.style.setProperty("--ca-accent", colour);
    root.style.setProperty("--ca-on-accent", onColour);
    // Text in the clinic's colour on white only when it is readable there too.
    if (contrast(light, 1) >= 4.5) root.style.setProperty("--ca-accent-text", colour);
  }

  // --- building the widget ----------------------------------------------------------------------------
  function build(styles) {
    var host = el("div");
    host.id = "clinic-assistant";
    ui.shadow = host.attachShadow({ mode: "open" });
    var sheet = el("link");
    sheet.rel = "stylesheet";
    sheet.href = styles;
    ui.shadow.appendChild(sheet);

    var root = el("div", "ca-root ca-" + options.position);
    root.lang = config.language;
    root.hidden = true; // until the styles have loaded: never a flash of an unstyled widget
    applyColour(root);

    ui.bubble = button("ca-bubble", "", openPanel);
    ui.bubble.setAttribute("aria-haspopup", "dialog");
    ui.bubble.setAttribute("aria-expanded", "false");
    ui.bubble.setAttribute("aria-controls", "ca-panel");
    ui.bubble.setAttribute("aria-label", t("open"));
    ui.bubble.appendChild(el("span", "ca-bubble-icon")).setAttribute("aria-hidden", "true");
    ui.bubble.appendChild(el("span", "ca-bubble-label", t("open"))).setAttribute("aria-hidden", "true");
    ui.badge = el("span", "ca-badge");
    ui.badge.hidden = true;
    ui.badge.setAttribute("aria-hidden", "true");
    ui.bubble.appendChild(ui.badge);

    ui.panel = el("div", "ca-panel");
    ui.panel.id = "ca-panel";
    ui.panel.hidden = true;
    ui.panel.setAttribute("role", "dialog");
    ui.panel.setAttribute("aria-modal", "true");
    ui.panel.setAttribute("aria-labelledby", "ca-title");
    ui.panel.setAttribute("aria-describedby", "ca-disclaimer");
    ui.panel.addEventListener("keydown", onPanelKey);

    var header = el("div", "ca-header");
    var title = el("h2", "ca-title", t("title"));
    title.id = "ca-title";
    header.appendChild(title);
    ui.close = button("ca-close", "", closePanel);
    ui.close.setAttribute("aria-label", t("close"));
    ui.close.appendChild(el("span", "ca-close-icon")).setAttribute("aria-hidden", "true");
    header.appendChild(ui.close);
    ui.panel.appendChild(header);

    var disclaimer = el("p", "ca-disclaimer", t("disclaimer"));
    disclaimer.id = "ca-disclaimer";
    ui.panel.appendChild(disclaimer);

    ui.alert = el("div", "ca-alert");
    ui.alert.setAttribute("role", "alert");
    ui.alert.hidden = true;
    ui.alertTitle = el("p", "ca-alert-title");
    ui.alertCall = el("a", "ca-alert-call");
    ui.alertNotified = el("p", "ca-alert-notified");
    ui.alert.appendChild(ui.alertTitle);
    ui.alert.appendChild(ui.alertCall);
    ui.alert.appendChild(ui.alertNotified);
    ui.panel.appendChild(ui.alert);

    ui.log = el("div", "ca-log");
    ui.log.setAttribute("role", "log");
    ui.log.setAttribute("aria-live", "polite");
    ui.log.setAttribute("aria-label", t("conversation"));
    ui.log.tabIndex = 0; // keyboard users can scroll the conversation
    ui.panel.appendChild(ui.log);
    ui.typing = el("div", "ca-typing");
    ui.typing.setAttribute("aria-hidden", "true");
    ui.typing.hidden = true;
    for (var dot = 0; dot < 3; dot += 1) ui.typing.appendChild(el("span", "ca-dot"));
    ui.status = el("p", "ca-visually-hidden");
    ui.status.setAttribute("role", "status");
    ui.panel.appendChild(ui.status);

    var actions = el("div", "ca-actions");
    ui.talk = button("ca-action", t("talk_to_clinic"), function () {
      send(t("talk_payload"));
    });
    ui.endChat = button("ca-action", t("end_chat"), askToEnd);
    actions.appendChild(ui.talk);
    actions.appendChild(ui.endChat);
    ui.panel.appendChild(actions);

    ui.confirm = el("div", "ca-confirm");
    ui.confirm.hidden = true;
    ui.confirm.setAttribute("role", "group");
    ui.confirm.setAttribute("aria-labelledby", "ca-confirm-text");
    var question = el("p", null, t("end_confirm"));
    question.id = "ca-confirm-text";
    ui.confirm.appendChild(question);
    ui.confirmYes = button("ca-action ca-danger", t("end_yes"), endChat);
    ui.confirm.appendChild(ui.confirmYes);
    ui.confirm.appendChild(button("ca-action", t("end_cancel"), cancelEnd));
    ui.panel.appendChild(ui.confirm);

    var form = el("form", "ca-form");
    var label = el("label", "ca-visually-hidden", t("input_label"));
    label.htmlFor = "ca-input";
    ui.input = el("textarea", "ca-input");
    ui.input.id = "ca-input";
    ui.input.rows = 1;
    ui.input.maxLength = config.max_message_chars;
    ui.input.placeholder = t("input_placeholder");
    ui.input.setAttribute("autocomplete", "off");
    ui.input.addEventListener("input", fitInput);
    ui.input.addEventListener("keydown", function (event) {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        send(ui.input.value);
      }
    });
    ui.send = el("button", "ca-send", t("send"));
    ui.send.type = "submit";
    form.appendChild(label);
    form.appendChild(ui.input);
    form.appendChild(ui.send);
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      send(ui.input.value);
    });
    ui.panel.appendChild(form);

    root.appendChild(ui.bubble);
    root.appendChild(ui.panel);
    ui.shadow.appendChild(root);
    document.body.appendChild(host);
    buildLinkPattern();

    return new Promise(function (resolve) {
      sheet.addEventListener("load", resolve);
      sheet.addEventListener("error", resolve);
    }).then(function () {
      root.hidden = false;
      host.dataset.ready = "true";
      if (window.performance && performance.mark) performance.mark("clinic-assistant-ready");
    });
  }

  function start() {
    var configUrl = new URL("widget/config", api);
    configUrl.searchParams.set("lang", options.language);
    fetch(configUrl, { credentials: "omit" })
      .then(function (response) {
        if (!response.ok) throw new Error("widget config " + response.status);
        return response.json();
      })
      .then(function (loaded) {
        config = loaded;
        return build(new URL("widget.css", here).href);
      })
      .then(loadConversation)
      .then(function () {
        if (state.handedOff) schedulePoll();
      })
      .catch(function (error) {
        // No bubble rather than a broken one; the clinic's page itself is untouched.
        if (window.console) console.warn("clinic-assistant:", error && error.message);
      });
    document.addEventListener("visibilitychange", function () {
      if (!document.hidden && config) schedulePoll();
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
