"""The worker Faust builds for the app keeps the root logger at the level asked for: at `-l warn`
(Faust's default) its progress spinner used to set it to DEBUG, so every library's debug call
built a record that was then dropped (streams/wire/app.py, SpinnerlessWorker)."""

from __future__ import annotations

import asyncio
import inspect
import logging

import pytest
from faust.cli import worker as faust_worker_command

from config.settings import Settings
from streams.wire.app import SpinnerlessWorker, create_app


def test_the_worker_command_builds_the_apps_worker_class() -> None:
    assert create_app(Settings()).conf.Worker is SpinnerlessWorker
    assert "self.app.conf.Worker" in inspect.getsource(faust_worker_command.worker)


@pytest.mark.parametrize("level", [logging.WARNING, logging.ERROR, logging.INFO])
def test_setting_up_the_root_logger_leaves_it_at_the_level_asked_for(level: int) -> None:
    async def set_up() -> logging.Logger:
        worker = create_app(Settings()).Worker(loglevel=level, quiet=True)
        logger = logging.getLogger(f"test-root-stand-in-{level}")
        logger.setLevel(level)
        logger.addHandler(logging.NullHandler())
        worker.on_setup_root_logger(logger, level)
        return logger

    logger = asyncio.run(set_up())
    assert logger.level == level
    assert not logger.isEnabledFor(logging.DEBUG)
    assert len(logger.handlers) == 1  # no spinner handler added


def test_the_workers_log_lines_keep_fausts_label() -> None:
    async def label() -> str:
        return str(create_app(Settings()).Worker(loglevel=logging.INFO, quiet=True).shortlabel)

    assert asyncio.run(label()) == "Worker"  # "[^Worker]: Ready" in the log
