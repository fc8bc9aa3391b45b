"""Seal.Transport and the long-poll request in Chromium, driven step by step: a blank page loads
the real scripts with stand-ins for the network (WebSocket and the JSON API), so each race is
played out in a fixed order, plus a real server for the long-poll time limit."""
from __future__ import annotations

from typing import List

import pytest

pytest.importorskip("playwright.sync_api")

from playwright.sync_api import Error, expect

from .conftest import REPO, Server
from .helpers import create_room, expect_message, join_room, send_text, wait_connected
from .settling import expect_settled

JS = REPO / "frontend" / "static" / "js"
PASSWORD = "transport password for the tests"

# Stand-ins: API calls wait until the test answers them; sockets record what they send.
STAGE = """
window.Seal = {dom: {cookie: function () { return 'xsrf'; }}};
window.calls = {events: [], sends: []};
window.sockets = [];
Seal.api = {
  TERMINAL: {session_expired: true, session_ended: true, token_invalid: true},
  makeError: function (code, message, status) { return {code: code, message: message, status: status || 0}; },
  isTerminal: function () { return false; },
  pollEvents: function (token, cursor, welcome, wait, cb) {
    calls.events.push({cb: cb, wait: wait}); return {abort: function () {}};
  },
  pollSend: function (token, frame, cb) { calls.sends.push({frame: frame, cb: cb}); return {abort: function () {}}; }
};
window.WebSocket = function (url) { this.sent = []; this.readyState = 0; this.closed = false; sockets.push(this); };
WebSocket.prototype.send = function (data) { this.sent.push(JSON.parse(data)); };
WebSocket.prototype.close = function () { this.closed = true; this.readyState = 3; };
window.wsOpen = function (ws) { ws.readyState = 1; if (ws.onopen) { ws.onopen(); } };
window.wsWelcome = function (ws) {
  if (ws.onmessage) { ws.onmessage({data: JSON.stringify({type: 'welcome', members: [], limits: {}})}); }
};
window.makeTransport = function (forcePoll) {
  return new Seal.Transport({token: 'tok', forcePoll: forcePoll, cursor: function () { return 0; },
    onEvent: function () {}, onState: function () {}, onTerminal: function () {}});
};
window.refs = function (frames) {
  return frames.filter(function (f) { return f.ref; }).map(function (f) { return f.ref; });
};
"""


@pytest.fixture
def stage(pages) -> object:
    page = pages.page()
    page.goto("about:blank")
    page.add_script_tag(content=STAGE)
    page.add_script_tag(content=(JS / "i18n.js").read_text())  # the words transport.js shows
    page.add_script_tag(content=(JS / "transport.js").read_text())
    return page


def test_frame_in_flight_over_long_poll_is_not_sent_again_when_websocket_returns(stage) -> None:
    result = stage.evaluate("""() => {
        var t = makeTransport(true), ws, out = {};
        t.start();                          // long-poll; calls.sends[0] is its ping
        t.send({type: 'msg', ref: 'A'});    // goes out over long-poll at once
        t.send({type: 'msg', ref: 'B'});    // waits its turn
        t.setForcePoll(false);              // tries WebSocket again
        ws = sockets[0];
        wsOpen(ws);
        wsWelcome(ws);                      // WebSocket is back while A is still under way
        out.wsBeforeAnswer = refs(ws.sent);
        calls.sends[1].cb(null, {});        // A is answered over long-poll
        out.mode = t.mode;
        out.poll = refs(calls.sends.map(function (c) { return c.frame; }));
        out.ws = refs(ws.sent);
        return out;
    }""")
    assert result["mode"] == "ws"
    assert result["poll"] == ["A"]
    assert result["wsBeforeAnswer"] == []  # B waits for A: the order holds
    assert result["ws"] == ["B"]  # each frame went out exactly once


def test_forcing_long_poll_during_a_switch_back_attempt_stops_it(stage) -> None:
    result = stage.evaluate("""() => {
        var t = makeTransport(false), ws;
        t.startPoll('WebSocket could not connect');
        t.setForcePoll(false);              // a switch-back attempt starts
        ws = sockets[0];
        t.setForcePoll(true);               // and the user chooses long-poll meanwhile
        wsOpen(ws);
        wsWelcome(ws);
        return {mode: t.mode, closed: ws.closed, attached: t.ws !== null, sockets: sockets.length};
    }""")
    assert result == {"mode": "poll", "closed": True, "attached": False, "sockets": 1}


def test_long_poll_that_gets_no_answer_is_retried_within_the_servers_poll_timeout(pages) -> None:
    """With --poll-timeout 2 the page gives up on a silent long-poll after about 17 s (the
    server's limit plus a margin), not after a fixed minute, and carries on."""
    server = Server("--poll-timeout", "2", "--presence-timeout", "90")
    try:
        base = server.url()
        page = pages.page(pages.context(init_script="delete window.WebSocket;"))
        create_room(page, base, "Silent Poll", "uma", PASSWORD)
        wait_connected(page, "poll")
        held: List[object] = []
        page.route("**/api/poll/events", lambda route: held.append(route))
        seen = page.evaluate("window.__states.length")
        page.wait_for_function("(n) => window.__states.slice(n).indexOf('poll:reconnecting') >= 0",
                               arg=seen, timeout=40_000)
        page.unroute("**/api/poll/events")
        for route in held:
            try:
                route.abort()  # type: ignore[attr-defined]
            except Error:
                continue  # the page gave up on it already
        wait_connected(page, "poll")
        send_text(page, "still here")
        expect_message(page, "still here")
    finally:
        server.stop()
    pages.check_clean()


def test_poll_request_time_limit_follows_the_servers_poll_timeout(stage) -> None:
    stage.add_script_tag(content=(JS / "api.js").read_text())
    delays = stage.evaluate("""() => {
        var delays = [], set = window.setTimeout;
        window.XMLHttpRequest = function () {};
        XMLHttpRequest.prototype = {open: function () {}, setRequestHeader: function () {},
            send: function () {}, abort: function () {}};
        window.setTimeout = function (fn, ms) { delays.push(ms); return 0; };
        Seal.api.pollEvents('tok', 0, true, 3, function () {});
        Seal.api.pollEvents('tok', 0, true, 90, function () {});
        Seal.api.pollEvents('tok', 0, true, undefined, function () {});
        window.setTimeout = set;
        return delays;
    }""")
    assert delays == [18_000, 105_000, 40_000]


# Every WebSocket is refused (closed before it opens) while window.__refuseWs is true.
REFUSE_WS = """
(function () {
  var Real = window.WebSocket;
  window.__refuseWs = true;
  window.WebSocket = function (url) {
    var refused;
    if (!window.__refuseWs) { return new Real(url); }
    refused = {readyState: 0, send: function () {}, close: function () {}};
    setTimeout(function () {
      refused.readyState = 3;
      if (refused.onclose) { refused.onclose({code: 1006}); }
    }, 50);
    return refused;
  };
})();
"""


def test_page_that_fell_back_to_long_poll_switches_back_to_websocket(pages, shared_server) -> None:
    base = shared_server.url()
    page = pages.page(pages.context(init_script=REFUSE_WS))
    other = pages.page()
    create_room(page, base, "Switch Back", "vera", PASSWORD)
    wait_connected(page, "poll")
    status = page.locator("#transport-status")
    expect(status).to_contain_text("Connected via long-poll (WebSocket could not connect)")
    join_room(other, base, "Switch Back", "walt", PASSWORD)
    expect_settled(["vera", "walt"], [page, other])

    page.evaluate("window.__refuseWs = false")  # the network lets WebSocket through again
    expect(status).to_have_attribute("data-transport", "ws", timeout=60_000)  # tried every 30 s
    expect(status).to_have_attribute("data-state", "connected")
    expect(status).to_have_text("Connected via WebSocket")
    states = page.evaluate("window.__states")
    assert states.index("poll:connected") < states.index("ws:connected"), states
    send_text(page, "back over websocket")
    expect_message(other, "back over websocket")
    send_text(other, "and to you")
    expect_message(page, "and to you")
    assert page.locator("#messages li.msg .body").all_text_contents().count("back over websocket") == 1
    pages.check_clean()
