// Atelier dashboard: renders the snapshots of GET /v1/dashboard/stream (Server-Sent Events).
// The stream is read with fetch() rather than EventSource, so that the bearer token travels in the
// Authorization header and never in a URL (where proxies and access logs would keep it). The token,
// when the API needs one, is asked for once and kept in this browser's localStorage; a link of the
// form /#token=... stores it too (a fragment never reaches the server), the token percent-encoded as
// encodeURIComponent writes it: a raw "&" would end it, and "%41" would be read as "A".
'use strict';

(function () {
  const TOKEN_KEY = 'atelier.apiToken';
  // The server writes at least every 15 s (a keep-alive comment): a stream silent for three times that
  // was dropped on the way (a NAT, a proxy, a laptop asleep) without the browser being told.
  const SILENT_STREAM_MS = 45000;
  // The server sends a snapshot at least every 5 s: an open stream that brings none for three times that
  // (its keep-alives still come) is from an API that cannot compute them, its database away.
  const STALE_SNAPSHOT_MS = 15000;
  const SVG = 'http://www.w3.org/2000/svg';
  const $ = (id) => document.getElementById(id);

  let latest = null;
  /** Local clock minus the server's, so times since an instant tick without a round trip. */
  let clockSkewMs = 0;
  let abort = null;
  let retryMs = 1000;
  /** While a stream is open: when it opened or last brought a snapshot (this page's clock). */
  let freshSince = null;

  function token() {
    return localStorage.getItem(TOKEN_KEY) || '';
  }

  function takeTokenFromFragment() {
    const match = /(?:^|[#&])token=([^&]+)/.exec(location.hash);
    if (!match) return;
    let value = match[1];
    try {
      value = decodeURIComponent(value);
    } catch {
      // Not valid percent-encoding ("abc%zz"): the token is taken as it was written.
    }
    localStorage.setItem(TOKEN_KEY, value);
    history.replaceState(null, '', location.pathname + location.search);
  }

  function setConnection(state, text) {
    const el = $('connection');
    el.dataset.state = state;
    el.textContent = text;
  }

  // ---- formatting ----

  function duration(seconds) {
    if (seconds === null || seconds === undefined || !isFinite(seconds)) return '–';
    if (seconds < 1) return Math.round(seconds * 1000) + 'ms';
    if (seconds < 60) return seconds.toFixed(1) + 's';
    const m = Math.floor(seconds / 60);
    if (m < 60) return m + 'm' + String(Math.floor(seconds % 60)).padStart(2, '0') + 's';
    return Math.floor(m / 60) + 'h' + String(m % 60).padStart(2, '0') + 'm';
  }

  /** The time since `iso`, by the server's clock: "5.5s ago", or with `ago` false "5.5s" (an elapsed time). */
  function since(iso, ago) {
    if (!iso) return '–';
    const text = duration((Date.now() - clockSkewMs - Date.parse(iso)) / 1000);
    return ago ? text + ' ago' : text;
  }

  /**
   * since() in a span that tick() moves on every second from the instant itself, as the snapshot
   * carries it: a time the snapshot had computed would stand still until the next one.
   */
  function sinceNow(iso, ago) {
    return el('span', {
      className: 'since',
      'data-since': iso || undefined,
      'data-ago': ago ? '' : undefined,
      text: since(iso, ago),
    });
  }

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null) continue;
      if (k === 'text') node.textContent = v;
      else if (k === 'className') node.className = v;
      else if (k.startsWith('data-')) node.dataset[k.slice(5).replace(/-([a-z])/g, (_, c) => c.toUpperCase())] = v;
      else node.setAttribute(k, v);
    }
    for (const child of children || []) node.append(child);
    return node;
  }

  function td(content, className) {
    const cell = el('td', { className });
    if (content instanceof Node) cell.append(content);
    else cell.textContent = content === null || content === undefined || content === '' ? '–' : String(content);
    return cell;
  }

  function taskLink(task) {
    return el('a', {
      href: task.links.temporalUi,
      target: '_blank',
      rel: 'noopener',
      className: 'mono',
      title: 'open the workflow history in the Temporal Web UI',
      text: task.id.slice(0, 8),
    });
  }

  /** A worker's health as a coloured dot, named for screen readers as its tooltip names it for the eye. */
  function healthDot(healthy) {
    const health = healthy ? 'serving' : 'not serving';
    return el('span', {
      className: 'dot' + (healthy ? ' healthy' : ''),
      role: 'img',
      'aria-label': health,
      title: health,
    });
  }

  function statusBadge(status) {
    return el('span', { className: 'status', 'data-status': status, text: status });
  }

  function fill(tbodyParent, rows, columns, emptyText) {
    const tbody = tbodyParent.querySelector('tbody');
    const next = rows.length ? rows : [el('tr', { className: 'empty' }, [td(emptyText)])];
    if (!rows.length) next[0].firstChild.colSpan = columns;
    tbody.replaceChildren(...next);
  }

  // ---- charts (inline SVG) ----

  function chart(container, width, height, draw) {
    const svg = document.createElementNS(SVG, 'svg');
    svg.setAttribute('viewBox', `0 0 ${width} ${height}`);
    svg.setAttribute('preserveAspectRatio', 'none');
    draw(svg);
    container.replaceChildren(svg);
  }

  function svgEl(tag, attrs, title) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    if (title) {
      const t = document.createElementNS(SVG, 'title');
      t.textContent = title;
      node.append(t);
    }
    return node;
  }

  function axes(svg, width, height, pad, max, unit) {
    svg.append(svgEl('line', { class: 'axis', x1: pad, y1: height - 14, x2: width, y2: height - 14 }));
    const label = (x, y, text, anchor) => {
      const t = svgEl('text', { x, y, 'text-anchor': anchor || 'start' });
      t.textContent = text;
      svg.append(t);
    };
    label(pad - 4, 10, `${max}${unit}`, 'end');
    label(pad - 4, height - 14, '0', 'end');
    label(pad, height - 2, '−60m');
    label((width + pad) / 2, height - 2, '−30m', 'middle');
    label(width, height - 2, 'now', 'end');
  }

  function niceMax(value) {
    if (value <= 0) return 1;
    const magnitude = 10 ** Math.floor(Math.log10(value));
    for (const step of [1, 2, 5, 10]) if (step * magnitude >= value) return step * magnitude;
    return 10 * magnitude;
  }

  function drawThroughput(series) {
    const n = series.minutes.length;
    const totals = series.minutes.map((_, i) => series.succeeded[i] + series.failed[i] + series.cancelled[i]);
    const max = niceMax(Math.max(1, ...totals, ...series.submitted));
    const W = 600;
    const H = 150;
    const pad = 28;
    const plotH = H - 20;
    const bw = (W - pad) / n;
    chart($('throughput-chart'), W, H, (svg) => {
      axes(svg, W, H, pad, max, '');
      series.minutes.forEach((minute, i) => {
        let y = H - 14;
        const label = new Date(minute).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
        for (const kind of ['succeeded', 'failed', 'cancelled']) {
          const v = series[kind][i];
          if (!v) continue;
          const h = (v / max) * (plotH - 8);
          y -= h;
          svg.append(
            svgEl(
              'rect',
              { class: kind, x: pad + i * bw + 0.5, y, width: Math.max(1, bw - 1), height: h },
              `${label}: ${v} ${kind}`,
            ),
          );
        }
      });
      const points = series.submitted
        .map((v, i) => `${pad + i * bw + bw / 2},${H - 14 - (v / max) * (plotH - 8)}`)
        .join(' ');
      svg.append(svgEl('polyline', { class: 'submitted', points }, 'submitted per minute'));
    });
  }

  function drawLatency(series) {
    const values = [...series.p50Seconds, ...series.p95Seconds].filter((v) => v !== null);
    const max = niceMax(Math.max(0.1, ...values));
    const W = 600;
    const H = 150;
    const pad = 28;
    const plotH = H - 20;
    const n = series.minutes.length;
    const x = (i) => pad + ((W - pad) * (i + 0.5)) / n;
    const y = (v) => H - 14 - (v / max) * (plotH - 8);
    chart($('latency-chart'), W, H, (svg) => {
      axes(svg, W, H, pad, max, 's');
      for (const key of ['p95Seconds', 'p50Seconds']) {
        const cls = key === 'p50Seconds' ? 'p50' : 'p95';
        // One polyline per stretch of minutes that had successes.
        let run = [];
        const flush = () => {
          if (run.length === 1) svg.append(svgEl('circle', { class: cls, cx: run[0][0], cy: run[0][1], r: 2 }));
          if (run.length > 1)
            svg.append(svgEl('polyline', { class: cls, points: run.map((p) => p.join(',')).join(' ') }));
          run = [];
        };
        series[key].forEach((v, i) => {
          if (v === null) flush();
          else run.push([x(i), y(v)]);
        });
        flush();
      }
    });
  }

  // ---- rendering ----

  function render(s) {
    latest = s;
    clockSkewMs = Date.now() - Date.parse(s.generatedAt);
    $('count-queued').textContent = s.counts.queued;
    $('count-running').textContent = s.counts.running;
    $('count-succeeded').textContent = s.counts.succeededLastHour;
    $('count-failed').textContent = s.counts.failedLastHour;
    $('count-cancelled').textContent = s.counts.cancelledLastHour;
    $('temporal-link').href = s.temporalUi.workflows;

    fill(
      $('queues'),
      s.queues.map((q) =>
        el('tr', { title: q.error || '' }, [
          td(el('span', { className: 'mono', text: q.name, title: `${q.name}, ${q.role} pool` }), 'fill'),
          td(q.waitingTasks === null ? '' : q.waitingTasks, 'num'),
          td(q.oldestWaitingSeconds === null ? '' : duration(q.oldestWaitingSeconds), 'num'),
          td(
            q.error
              ? 'unavailable'
              : q.backlog === null
                ? ''
                : `${q.backlog}${q.backlogAgeSeconds ? ` (${duration(q.backlogAgeSeconds)})` : ''}`,
            'num',
          ),
          td(q.pollers, 'num'),
        ]),
      ),
      5,
      'no queues',
    );

    fill(
      $('workers'),
      s.workers.map((w) =>
        el('tr', { 'data-worker': w.identity }, [
          td(healthDot(w.healthy)),
          td(
            el('span', { className: 'mono', text: w.identity, title: `${w.identity}, polling ${w.taskQueue}` }),
            'fill',
          ),
          td(w.role),
          td(w.role === 'agents' ? w.running : '', 'num'),
          td(`${w.succeededLastHour} / ${w.failedLastHour}`, 'num'),
          td(sinceNow(w.lastPollAt, true)),
        ]),
      ),
      6,
      'no worker is polling',
    );

    const maxClass = Math.max(1, ...s.failures.attemptsByClass.map((f) => f.count));
    $('failure-classes').replaceChildren(
      ...(s.failures.attemptsByClass.length
        ? s.failures.attemptsByClass.flatMap((f) => {
            const bar = el('div', { className: 'bar', title: `${f.count} failed attempts: ${f.class}` });
            bar.style.width = `${(100 * f.count) / maxClass}%`;
            return [
              el('span', { className: 'mono', text: f.class }),
              el('div', {}, [bar]),
              el('span', { text: String(f.count) }),
            ];
          })
        : [el('span', { className: 'hint', text: 'no failed attempts' })]),
    );
    $('failures').replaceChildren(
      ...s.failures.recent.map((f) =>
        el('li', { title: f.message || '' }, [
          taskLink(f),
          document.createTextNode(` ${f.errorClass || 'failed'}: ${f.message || ''}`),
        ]),
      ),
    );

    drawThroughput(s.series);
    drawLatency(s.series);

    // The list holds at most 50 tasks; the count is of them all.
    const shown = s.running.length;
    const total = s.counts.running;
    $('running-count').textContent = total === 0 ? '' : shown < total ? `${shown} of ${total}` : String(total);
    fill(
      $('running'),
      s.running.map((t) =>
        el('tr', { 'data-task-id': t.id }, [
          td(taskLink(t)),
          td(t.agent + (t.model ? ` (${t.model})` : '')),
          td(t.attempt, 'num'),
          td(el('span', { className: 'mono', text: t.worker || '–', title: t.worker }), 'fill'),
          td(sinceNow(t.startedAt, false), 'num'),
        ]),
      ),
      5,
      'nothing running',
    );

    fill(
      $('recent'),
      s.recent.map((t) =>
        el('tr', { 'data-task-id': t.id, 'data-status': t.status }, [
          td(taskLink(t)),
          td(statusBadge(t.status)),
          td(t.agent),
          td(sinceNow(t.createdAt, true)),
          td(t.durationSeconds === null ? '' : duration(t.durationSeconds), 'num'),
          td(t.errorClass),
        ]),
      ),
      6,
      'no tasks yet',
    );
    $('updated').textContent = `updated ${new Date(s.generatedAt).toLocaleTimeString()}`;
  }

  /** Times since an instant move every second between snapshots; figures no new snapshot follows are not "live". */
  function tick() {
    for (const node of document.querySelectorAll('.since[data-since]')) {
      node.textContent = since(node.dataset.since, 'ago' in node.dataset);
    }
    const quietMs = freshSince === null ? 0 : Date.now() - freshSince;
    if (quietMs > STALE_SNAPSHOT_MS) setConnection('error', `no new data for ${Math.round(quietMs / 1000)} s`);
  }

  // ---- the stream ----

  /** The events of an SSE body; `onChunk` is called whenever bytes arrive (comments too). */
  async function* events(body, onChunk) {
    const reader = body.getReader();
    const decoder = new TextDecoder();
    let buffer = '';
    let event = '';
    let data = [];
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      onChunk();
      buffer += decoder.decode(value, { stream: true });
      let end;
      while ((end = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, end).replace(/\r$/, '');
        buffer = buffer.slice(end + 1);
        if (line === '') {
          if (data.length) yield { event: event || 'message', data: data.join('\n') };
          event = '';
          data = [];
        } else if (line.startsWith('event:')) event = line.slice(6).trim();
        else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
      }
    }
  }

  function askForToken(message) {
    $('token-form').hidden = false;
    $('token-error').textContent = message || '';
    $('token-input').focus();
    setConnection('error', 'token needed');
  }

  async function connect() {
    if (abort) abort.abort();
    const controller = new AbortController();
    abort = controller;
    freshSince = null;
    let watchdog;
    const resetWatchdog = () => {
      clearTimeout(watchdog);
      watchdog = setTimeout(
        () => controller.abort(new Error(`nothing heard for ${SILENT_STREAM_MS / 1000} s`)),
        SILENT_STREAM_MS,
      );
    };
    const headers = { accept: 'text/event-stream' };
    // A header carries visible ASCII only: fetch would throw on anything else before asking, for ever.
    if (token() && !/^[\x21-\x7e]+$/.test(token())) {
      askForToken('that token cannot be sent: it holds spaces or characters a header cannot carry');
      return;
    }
    if (token()) headers.authorization = `Bearer ${token()}`;
    $('forget-token').hidden = !token();
    setConnection('connecting', 'connecting…');
    try {
      resetWatchdog();
      const res = await fetch('/v1/dashboard/stream', { headers, signal: controller.signal, cache: 'no-store' });
      if (res.status === 401) {
        askForToken(token() ? 'that token was refused' : '');
        return;
      }
      if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
      $('token-form').hidden = true;
      setConnection('live', 'live');
      freshSince = Date.now();
      retryMs = 1000;
      for await (const e of events(res.body, resetWatchdog)) {
        if (e.event !== 'snapshot') continue;
        render(JSON.parse(e.data));
        freshSince = Date.now();
        if ($('connection').dataset.state !== 'live') setConnection('live', 'live');
      }
      throw new Error('stream closed');
    } catch (err) {
      // Aborted for a newer connection (a token given or forgotten): that one carries on.
      if (abort !== controller) return;
      const reason = controller.signal.aborted ? controller.signal.reason : err;
      setConnection('error', `reconnecting (${reason.message})`);
      setTimeout(connect, retryMs);
      retryMs = Math.min(retryMs * 2, 15000);
    } finally {
      clearTimeout(watchdog);
      // An ended stream shows why it ended, not how old its figures are; a newer one keeps its own time.
      if (abort === controller) freshSince = null;
    }
  }

  document.addEventListener('DOMContentLoaded', () => {
    takeTokenFromFragment();
    $('token-form').addEventListener('submit', (e) => {
      e.preventDefault();
      localStorage.setItem(TOKEN_KEY, $('token-input').value.trim());
      $('token-input').value = '';
      connect();
    });
    $('forget-token').addEventListener('click', () => {
      localStorage.removeItem(TOKEN_KEY);
      connect();
    });
    setInterval(tick, 1000);
    connect();
  });

  // For tests and the curious: the last snapshot rendered.
  window.atelierDashboard = { latest: () => latest };
})();
