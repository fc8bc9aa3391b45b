/*
 * Seal.emoji: a small emoji picker. Builds buttons into a panel and inserts the chosen emoji
 * at the caret of a text field; usable by keyboard alone.
 */
(function (root) {
    'use strict';

    var Seal = root.Seal;
    var dom = Seal.dom;
    var i18n = Seal.i18n;
    var EMOJI = [
        '\uD83D\uDE00', '\uD83D\uDE02', '\uD83D\uDE05', '\uD83D\uDE09', '\uD83D\uDE0A', '\uD83D\uDE0D',
        '\uD83D\uDE18', '\uD83D\uDE0E', '\uD83E\uDD14', '\uD83D\uDE10', '\uD83D\uDE44', '\uD83D\uDE34',
        '\uD83D\uDE22', '\uD83D\uDE2D', '\uD83D\uDE21', '\uD83D\uDE31', '\uD83E\uDD73', '\uD83E\uDD17',
        '\uD83D\uDC4D', '\uD83D\uDC4E', '\uD83D\uDC4F', '\uD83D\uDE4F', '\uD83D\uDCAA', '\uD83D\uDC4B',
        '\u2764\uFE0F', '\uD83D\uDC94', '\uD83D\uDD25', '\u2728', '\uD83C\uDF89', '\uD83C\uDF82',
        '\u2615', '\uD83C\uDF7A', '\uD83C\uDF55', '\uD83C\uDF4E', '\uD83C\uDF3B', '\uD83C\uDF19',
        '\u2600\uFE0F', '\u26A1', '\u2744\uFE0F', '\uD83D\uDC36', '\uD83D\uDC31', '\uD83E\uDD8A',
        '\u2705', '\u274C', '\u2753', '\u2757', '\uD83D\uDC40', '\uD83D\uDD12'
    ];

    function insertAtCaret(input, text) {
        var start = input.selectionStart, end = input.selectionEnd, v = input.value;
        if (typeof start === 'number' && typeof end === 'number') {
            input.value = v.slice(0, start) + text + v.slice(end);
            input.selectionStart = input.selectionEnd = start + text.length;
        } else {
            input.value = v + text;
        }
    }

    // How many buttons sit on the first row of the panel as it is drawn now (for Up and Down).
    function columns(buttons) {
        var n = 1;
        while (n < buttons.length && buttons[n].offsetTop === buttons[0].offsetTop) {
            n++;
        }
        return n;
    }

    // panel: container element; toggle: the button that opens it; input: the text field.
    // Opening moves focus to the first emoji; choosing one inserts it, closes the panel and goes
    // back to the text field; Escape closes it and goes back to the toggle. Arrow keys move
    // between the emoji, Tab and Shift+Tab too.
    function picker(panel, toggle, input) {
        var i, built = false;
        function build() {
            for (i = 0; i < EMOJI.length; i++) {
                panel.appendChild(dom.el('button', {type: 'button', 'aria-label': i18n.t('Insert {emoji}', {emoji: EMOJI[i]}),
                    'data-emoji': EMOJI[i], text: EMOJI[i]}));
            }
            built = true;
        }
        function setOpen(open) {
            if (open && !built) {
                build();
            }
            dom.show(panel, open);
            toggle.setAttribute('aria-expanded', open ? 'true' : 'false');
        }
        dom.on(toggle, 'click', function () {
            var open = panel.hasAttribute('hidden');
            setOpen(open);
            if (open) {
                panel.getElementsByTagName('button')[0].focus();
            }
        });
        dom.on(panel, 'click', function (ev) {
            var t = ev.target, e = t && t.getAttribute && t.getAttribute('data-emoji');
            if (e) {
                insertAtCaret(input, e);
                setOpen(false);
                input.focus();
            }
        });
        dom.on(panel, 'keydown', function (ev) {
            var buttons = panel.getElementsByTagName('button'), at = dom.indexOf(buttons, ev.target), step;
            if (ev.keyCode === 27) {
                setOpen(false);
                toggle.focus();
                return;
            }
            step = {37: -1, 39: 1, 38: -columns(buttons), 40: columns(buttons)}[ev.keyCode] || 0;
            if (step && at >= 0 && buttons[at + step]) {
                ev.preventDefault();
                buttons[at + step].focus();
            }
        });
        return {close: function () {
            setOpen(false);
        }};
    }

    Seal.emoji = {LIST: EMOJI, picker: picker, insertAtCaret: insertAtCaret};
}(this));
