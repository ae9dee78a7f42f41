/* opensage console: live updates (the page polls itself and swaps its [data-live] blocks),
   log tails, and the actions (stop, clone, invoke). No dependencies. */
"use strict";
(function () {
  const HEADER = {"X-Opensage-Console": "1", "Content-Type": "application/json"};
  const POLL_MS = 2000;

  /* -- live blocks: re-read this page, replace each [data-live] block by its new version -- */
  function keepChecked(root) {
    return new Set([...root.querySelectorAll("input[type=checkbox]:checked")].map((c) => c.value));
  }

  async function refresh() {
    const main = document.querySelector("main[data-poll]");
    if (!main || document.hidden) return schedule();
    try {
      const response = await fetch(location.href, {headers: {Accept: "text/html"}});
      if (!response.ok) return schedule();
      const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
      fresh.querySelectorAll("[data-live]").forEach((block) => {
        const old = document.querySelector(`[data-live="${block.dataset.live}"]`);
        if (!old || old.innerHTML === block.innerHTML) return;
        const checked = keepChecked(old);
        const focused = document.activeElement && old.contains(document.activeElement)
          ? document.activeElement.getAttribute("href") || document.activeElement.id : null;
        old.innerHTML = block.innerHTML;
        old.querySelectorAll("input[type=checkbox]").forEach((c) => { c.checked = checked.has(c.value); });
        if (focused) {
          const again = old.querySelector(`[href="${CSS.escape(focused)}"], #${CSS.escape(focused)}`);
          if (again) again.focus();
        }
        bind(old);
        if (window.opensageCharts) window.opensageCharts.renderAll(old);
      });
      if (!fresh.querySelector("main[data-poll]")) main.removeAttribute("data-poll");
    } catch (err) {
      /* the server restarted or the network blinked: try again on the next tick */
    }
    schedule();
  }

  let timer = null;
  function schedule() {
    clearTimeout(timer);
    if (document.querySelector("main[data-poll]")) timer = setTimeout(refresh, POLL_MS);
  }

  /* -- log tail: each stream read forward from its token every 2 s until the job settles -- */
  const SETTLED = new Set(["Completed", "Failed", "Stopped", "InService", "OutOfService"]);

  function tail(section) {
    const base = section.dataset.logs;
    const state = section.querySelector(".log-state");
    const holder = section.querySelector(".log-streams");
    const streams = new Map();
    let quietAfterEnd = 0;

    function streamBox(name) {
      if (streams.has(name)) return streams.get(name);
      const wrap = document.createElement("div");
      wrap.className = "log-stream";
      const title = document.createElement("h3");
      title.textContent = name;
      const pre = document.createElement("pre");
      pre.tabIndex = 0;
      pre.setAttribute("aria-label", "Log stream " + name);
      pre.className = "log";
      wrap.append(title, pre);
      holder.appendChild(wrap);
      const entry = {pre, token: ""};
      streams.set(name, entry);
      return entry;
    }

    async function tick() {
      let status = "", received = 0;
      try {
        const list = await (await fetch(base)).json();
        if (list.error) { state.textContent = list.message; return; }
        status = list.status;
        for (const name of list.streams) {
          const entry = streamBox(name);
          for (;;) {
            const q = new URLSearchParams({stream: name, token: entry.token});
            const page = await (await fetch(base + "?" + q)).json();
            if (page.error) break;
            const atBottom = entry.pre.scrollTop + entry.pre.clientHeight >= entry.pre.scrollHeight - 4;
            if (page.events.length) {
              entry.pre.append(document.createTextNode(page.events.map((e) => e[1]).join("\n") + "\n"));
              if (atBottom) entry.pre.scrollTop = entry.pre.scrollHeight;
            }
            received += page.events.length;
            const moved = page.token !== entry.token;
            entry.token = page.token;
            if (!moved || page.events.length < 1000) break;
          }
        }
        if (!list.streams.length) state.textContent = "No log streams yet.";
        else state.textContent = SETTLED.has(status) ? "Job " + status.toLowerCase() + "; log complete." : "Following the log (" + status + ")…";
      } catch (err) {
        state.textContent = "Could not read the log; retrying.";
      }
      section.dataset.status = status;
      if (SETTLED.has(status)) {
        quietAfterEnd = received ? 0 : quietAfterEnd + 1;
        if (quietAfterEnd >= 1) return;  /* one empty read after the end: the log is whole */
      }
      setTimeout(tick, POLL_MS);
    }
    tick();
  }

  /* -- actions ---------------------------------------------------------------------------- */
  async function post(url, body) {
    const response = await fetch(url, {method: "POST", headers: HEADER, body: JSON.stringify(body || {})});
    const answer = await response.json();
    if (!response.ok) throw new Error(answer.message || response.statusText);
    return answer;
  }

  function bind(root) {
    root.querySelectorAll("[data-stop]").forEach((b) => {
      if (b.dataset.bound) return;
      b.dataset.bound = "1";
      b.addEventListener("click", async () => {
        if (!confirm(b.textContent + "?")) return;
        b.disabled = true;
        try {
          await post(b.dataset.stop);
          b.textContent = "Stopping…";
          const main = document.querySelector("main");
          main.setAttribute("data-poll", "2000");
          schedule();
        } catch (err) { b.disabled = false; alert(err.message); }
      });
    });
    root.querySelectorAll("[data-toggle]").forEach((b) => {
      if (b.dataset.bound) return;
      b.dataset.bound = "1";
      b.addEventListener("click", () => {
        const target = document.getElementById(b.dataset.toggle);
        target.hidden = !target.hidden;
        b.setAttribute("aria-expanded", String(!target.hidden));
        if (!target.hidden) { const first = target.querySelector("input, textarea"); if (first) first.focus(); }
      });
    });
  }

  function bindForms() {
    document.querySelectorAll("form[data-clone]").forEach((form) => {
      form.addEventListener("submit", async (event) => {
        event.preventDefault();
        const error = form.querySelector(".form-error");
        error.textContent = "";
        let hps;
        try { hps = JSON.parse(form.elements.HyperParameters.value || "{}"); }
        catch (err) { error.textContent = "Hyperparameters are not valid JSON: " + err.message; return; }
        try {
          const made = await post(form.dataset.clone, {TrainingJobName: form.elements.TrainingJobName.value, HyperParameters: hps});
          location.href = document.body.dataset.prefix + "/training-jobs/" + encodeURIComponent(made.TrainingJobName);
        } catch (err) { error.textContent = err.message; }
      });
    });
    document.querySelectorAll("form[data-invoke]").forEach((form) => {
      form.addEventListener("submit", async (event) => {
        event.preventDefault();
        const box = form.parentElement.querySelector(".try-result");
        const status = box.querySelector(".try-status"), out = box.querySelector(".try-output");
        const headers = {"Content-Type": form.elements.content_type.value, "X-Opensage-Console": "1"};
        if (form.elements.accept.value) headers.Accept = form.elements.accept.value;
        if (form.elements.variant && form.elements.variant.value) headers["X-Amzn-SageMaker-Target-Variant"] = form.elements.variant.value;
        status.textContent = "Invoking…";
        const started = performance.now();
        try {
          const response = await fetch(form.dataset.invoke, {method: "POST", headers, body: form.elements.body.value});
          const text = await response.text();
          const ms = (performance.now() - started).toFixed(1);
          status.textContent = `${response.status} ${response.ok ? "OK" : "error"} · ${response.headers.get("Content-Type") || ""} · ${ms} ms` +
            (response.headers.get("X-Amzn-Invoked-Production-Variant") ? " · variant " + response.headers.get("X-Amzn-Invoked-Production-Variant") : "");
          out.textContent = text;
          out.hidden = false;
        } catch (err) { status.textContent = "The request failed: " + err.message; }
      });
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    bind(document);
    bindForms();
    document.querySelectorAll("[data-logs]").forEach(tail);
    schedule();
  });
})();
