"""The subcommands' argument parser: a mistake is one line naming the command's --help, never argparse's usage."""

import argparse

from synthkit.core.errors import UserError


class Parser(argparse.ArgumentParser):
    def error(self, message: str):
        raise UserError(f"{self.prog.removeprefix('synthkit ')}: {message}; see {self.prog} --help")
