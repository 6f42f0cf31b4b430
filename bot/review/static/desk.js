// The desk's little JavaScript: new cases without a reload, and keyboard shortcuts.
// Everything here is an extra: every action is a plain form that works without it.
"use strict";

const POLL_MS = 4000;

function typing(target) {
  return target.closest("input, textarea, select, [contenteditable]") !== null;
}

function watchQueue(list) {
  // Swap in the server-rendered list when it changes; say how many cases arrived.
  const arrivals = document.getElementById("arrivals");
  const ids = () => new Set([...list.querySelectorAll("[data-case]")].map((el) => el.dataset.case));
  async function refresh() {
    try {
      const response = await fetch(list.dataset.refresh, { credentials: "same-origin" });
      if (response.redirected || !response.ok) return; // signed out: the next click shows the sign-in page
      const html = await response.text();
      if (html.trim() === list.innerHTML.trim()) return;
      const before = ids();
      const focused = document.activeElement?.closest("[data-case]")?.dataset.case;
      list.innerHTML = html;
      const fresh = [...ids()].filter((id) => !before.has(id)).length;
      if (fresh) arrivals.textContent = `${fresh} new case${fresh > 1 ? "s" : ""}`;
      document.title = document.title.replace(/^\(\d+\)/, `(${ids().size})`);
      if (focused) list.querySelector(`[data-case="${focused}"] a`)?.focus();
    } catch (error) {
      // The network blinked: try again at the next tick.
    }
  }
  setInterval(refresh, POLL_MS);
}

function moveInQueue(step) {
  const links = [...document.querySelectorAll(".cases a")];
  if (!links.length) return;
  const at = links.indexOf(document.activeElement);
  links[Math.max(0, Math.min(links.length - 1, at + step))].focus();
}

function click(id) {
  document.getElementById(id)?.click();
}

function caseKeys(event) {
  const reply = document.getElementById("reply");
  const keys = {
    a: () => click("approve"),
    c: () => click("claim"),
    e: () => { reply.focus(); reply.setSelectionRange(reply.value.length, reply.value.length); },
    w: () => click("scratch"),
    r: () => document.getElementById("reason").focus(),
    h: () => { if (confirm("Hand this conversation to people? The bot will stay out of it.")) click("handover"); },
  };
  const act = keys[event.key];
  if (act && reply) { event.preventDefault(); act(); }
}

document.addEventListener("DOMContentLoaded", () => {
  const list = document.getElementById("cases");
  if (list) watchQueue(list);
  const scratch = document.getElementById("scratch");
  if (scratch) {
    scratch.addEventListener("click", () => {
      const reply = document.getElementById("reply");
      reply.value = "";
      reply.focus();
    });
  }
  const reason = document.getElementById("reason");
  if (reason) {
    // Enter in the reason field rejects (the close form's first button); hand-over needs its own key.
    reason.addEventListener("keydown", (event) => {
      if (event.key === "Enter") { event.preventDefault(); click("reject"); }
    });
  }
});

document.addEventListener("keydown", (event) => {
  if (event.altKey || event.metaKey) return;
  if (typing(event.target)) {
    if (event.key === "Escape") event.target.blur();
    if (event.key === "Enter" && event.ctrlKey && event.target.id === "reply") { event.preventDefault(); click("approve"); }
    return;
  }
  if (event.ctrlKey) return;
  if (event.key === "j") moveInQueue(1);
  else if (event.key === "k") moveInQueue(-1);
  else if (event.key === "q") window.location.href = "/desk/";
  else caseKeys(event);
});
