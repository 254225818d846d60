/*
 * The playground's SDK for tutorial sites, served at /sdk.js.
 *
 * Load it from the playground, then start a session and show its
 * terminals in your own page:
 *
 *   <script src="https://play.example/sdk.js"></script>
 *   <div id="term" style="height: 320px"></div>
 *   <pre class="run">docker run hello-world</pre>
 *   <script>
 *     const pg = Playground.connect();   // the server this script came from
 *     pg.createSession({template: "2-instances"}).then((s) => {
 *       s.terminal("node1", "#term");     // an iframe of /embed/s/<id>/node1
 *       s.bindCode("pre.run", "node1");   // a click runs the block in node1
 *     });
 *   </script>
 *
 * The playground must list your page's origin in --embed-origins, or the
 * browser refuses both the API calls and the terminals' frames.
 *
 * Plain JavaScript with no dependencies and no build step. Everything it
 * does goes through the playground's documented HTTP API (README, "API")
 * and the /embed/ pages' messages:
 *   to the frame:   {type: "playground:run", text: "ls\n", interrupt: false}
 *   from the frame: {type: "playground:ready", instance: "node1"}
 */
(function (global) {
  "use strict";

  // The origin this script was loaded from: the default server.
  const scriptOrigin = (function () {
    const script = document.currentScript;
    try {
      return script && script.src ? new URL(script.src).origin : null;
    } catch (_) {
      return null;
    }
  })();

  /** An error from the playground; `status` is the HTTP status (0: unreachable). */
  class PlaygroundError extends Error {
    constructor(message, status) {
      super(message);
      this.name = "PlaygroundError";
      this.status = status;
    }
  }

  /** `document.querySelector(target)` for strings, else `target` itself. */
  function element(target) {
    const el = typeof target === "string" ? document.querySelector(target) : target;
    if (!el) {
      throw new PlaygroundError(`no element ${target} in this page`, 0);
    }
    return el;
  }

  /** A connection to one playground server. */
  class Playground {
    /**
     * `server`: the playground's address (only its origin counts); by
     * default the origin this script was loaded from.
     */
    static connect(server) {
      return new Playground(server || scriptOrigin || global.location.origin);
    }

    constructor(server) {
      this.server = new URL(server, global.location.href).origin;
      this._sessions = [];
      // One listener for every frame of every session: frames say when
      // their terminal is connected.
      global.addEventListener("message", (event) => {
        if (event.origin !== this.server || !event.data) {
          return;
        }
        if (event.data.type === "playground:ready") {
          for (const session of this._sessions) {
            session._ready(event.source);
          }
        }
      });
    }

    /** Call the API; resolves with the parsed body, rejects with its error message. */
    async api(method, path, body) {
      let response;
      try {
        response = await fetch(this.server + "/api" + path, {
          method,
          mode: "cors",
          credentials: "omit",
          headers: body === undefined ? {} : { "Content-Type": "application/json" },
          body: body === undefined ? undefined : JSON.stringify(body),
        });
      } catch (_) {
        // The browser says no more, by design: most often CORS.
        throw new PlaygroundError(
          `the playground at ${this.server} did not answer this page ` +
            `(is ${global.location.origin} in its --embed-origins?)`,
          0
        );
      }
      if (!response.ok) {
        let message = `${method} ${path}: HTTP ${response.status}`;
        try {
          const answer = await response.json();
          if (answer && answer.error) {
            message = answer.error;
          }
        } catch (_) {
          // Not JSON: keep the status line.
        }
        throw new PlaygroundError(message, response.status);
      }
      return response.status === 204 ? null : response.json();
    }

    /**
     * Start a session: `{template: "2-instances"}` or `{scenario: "id"}`
     * (both optional: without them, a session with no instance).
     */
    async createSession(options) {
      const body = {};
      if (options && options.template) body.template = options.template;
      if (options && options.scenario) body.scenario = options.scenario;
      return this._track(new Session(this, await this.api("POST", "/sessions", body)));
    }

    /** Take back a session this page started earlier (e.g. before a reload). */
    async session(id) {
      const info = await this.api("GET", "/sessions/" + encodeURIComponent(id));
      return this._track(new Session(this, info));
    }

    _track(session) {
      this._sessions.push(session);
      return session;
    }
  }

  /** A session: its instances, their terminals in this page, their ports. */
  class Session {
    constructor(playground, info) {
      this.playground = playground;
      /** The session as the API returned it (id, expires_at, instances, ...). */
      this.info = info;
      this.id = info.id;
      // Frames this session made: {name, tab, frame, ready, queue}.
      this._terminals = [];
    }

    /** The instances' names, e.g. ["node1", "node2"]. */
    get instances() {
      return this.info.instances.map((i) => i.name);
    }

    /**
     * Show instance `name`'s terminal in `target` (an element or a
     * selector): an iframe filling it. Options: `tab`, one of the
     * instance's four shells (0 to 3); `theme`, "dark" (the default) or
     * "light"; `fontSize` in pixels (14). Returns the iframe.
     */
    terminal(name, target, options) {
      const { tab = 0, theme, fontSize } = options || {};
      const host = element(target);
      const frame = document.createElement("iframe");
      const query = new URLSearchParams();
      if (tab) query.set("tab", tab);
      if (theme === "light") query.set("theme", "light");
      if (fontSize) query.set("font", fontSize);
      let src =
        `${this.playground.server}/embed/s/${encodeURIComponent(this.id)}` +
        `/${encodeURIComponent(name)}`;
      if (String(query)) src += `?${query}`;
      frame.src = src;
      frame.title = `Terminal of ${name}`;
      frame.className = "playground-terminal";
      frame.setAttribute("allow", "clipboard-read; clipboard-write");
      frame.style.cssText = "display:block;width:100%;height:100%;border:0";
      host.replaceChildren(frame);
      this._terminals = this._terminals.filter((t) => t.frame.isConnected);
      this._terminals.push({ name, tab, frame, ready: false, queue: [] });
      return frame;
    }

    /**
     * Type `command` into instance `name`'s terminal, then Enter. Before
     * the terminal is connected the text waits for it. `options.tab`
     * picks which of its terminals; `options.interrupt` sends Ctrl-C first
     * (stops what runs there). Throws when the page shows no terminal of
     * `name`.
     */
    run(name, command, options) {
      const tab = options && options.tab;
      const terminal = this._terminals.find(
        (t) => t.name === name && t.frame.isConnected && (tab === undefined || t.tab === tab)
      );
      if (!terminal) {
        throw new PlaygroundError(`no terminal of ${name} in this page: call terminal() first`, 0);
      }
      const message = {
        type: "playground:run",
        text: String(command).replace(/\s+$/, "") + "\n",
        interrupt: Boolean(options && options.interrupt),
      };
      if (terminal.ready) {
        this._post(terminal, message);
      } else {
        terminal.queue.push(message);
      }
    }

    /**
     * Make the elements matching `selector` (now and later) run their text
     * in instance `name`'s terminal when clicked; `options` as for run().
     * A click that ends a text selection does not run (so text can still
     * be copied).
     */
    bindCode(selector, name, options) {
      for (const el of document.querySelectorAll(selector)) {
        el.style.cursor = "pointer";
        if (!el.title) el.title = `Run in ${name}`;
      }
      document.addEventListener("click", (event) => {
        const el = event.target instanceof Element ? event.target.closest(selector) : null;
        if (!el || String(global.getSelection())) {
          return;
        }
        event.preventDefault();
        this.run(name, el.innerText, options);
      });
    }

    /** The link to `port` of instance `name`, through the playground's proxy. */
    portUrl(name, port) {
      return this.info.port_url_template
        .replace("{instance}", encodeURIComponent(name))
        .replace("{port}", String(port));
    }

    /** Fetch the session again (instances, ports, time left) into `info`. */
    async refresh() {
      this.info = await this.playground.api("GET", "/sessions/" + encodeURIComponent(this.id));
      return this.info;
    }

    /** End the session: its instances are destroyed, its frames removed. */
    async end() {
      await this.playground.api("DELETE", "/sessions/" + encodeURIComponent(this.id));
      for (const t of this._terminals) t.frame.remove();
      this._terminals = [];
    }

    // A frame said its terminal is connected: send what waited for it.
    _ready(source) {
      for (const t of this._terminals) {
        if (t.frame.contentWindow === source) {
          t.ready = true;
          for (const message of t.queue.splice(0)) this._post(t, message);
        }
      }
    }

    _post(terminal, message) {
      terminal.frame.contentWindow.postMessage(message, this.playground.server);
    }
  }

  global.Playground = Playground;
  global.PlaygroundError = PlaygroundError;
})(window);
