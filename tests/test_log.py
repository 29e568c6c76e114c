"""The library's messages: plain lines on whatever standard output is current, quietened through logging."""

import logging

import emotionlib  # noqa: F401 - importing the package sets up its logger


def test_messages_are_lines_on_the_current_stdout_and_logging_quietens_them(capsys):
    log = logging.getLogger("emotionlib.train")
    log.info("epoch 1/1: a line")
    assert capsys.readouterr().out == "epoch 1/1: a line\n"
    root = logging.getLogger("emotionlib")
    level = root.level
    root.setLevel(logging.WARNING)
    try:
        log.info("not shown")
        assert capsys.readouterr().out == ""
    finally:
        root.setLevel(level)


def test_an_application_handler_replaces_the_default(capsys):
    from emotionlib.log import setup

    root = logging.getLogger("emotionlib")
    default = root.handlers[:]
    seen = []
    try:
        root.handlers = [logging.Handler()]
        root.handlers[0].emit = seen.append
        setup()  # the application's handler stays the only one
        logging.getLogger("emotionlib.data").info("downloading")
        assert [r.getMessage() for r in seen] == ["downloading"] and capsys.readouterr().out == ""
    finally:
        root.handlers = default
