"""Library hints in Python words become the command's flags."""
from pluralrm.cli.console_warnings import cli_words

MESSAGE = "f.jsonl, row 2: empty (fix the row, or pass on_bad_row='skip' to skip bad rows)"


def test_hints_name_each_commands_own_flag():
    assert cli_words(MESSAGE, "score").endswith("pass --on-bad-row skip to skip bad rows)")
    assert cli_words(MESSAGE, "train").endswith("pass --set data.on_bad_row=skip to skip bad rows)")
    undeclared = "undeclared group attribute 'x': add it to groups=, or pass extra='ignore' to drop undeclared columns"
    assert cli_words(undeclared, "data") == ("undeclared group attribute 'x': add it to --groups, or pass --extra "
                                             "ignore to drop undeclared columns")
    assert cli_words(undeclared, "train") == ("undeclared group attribute 'x': add it to data.groups, or remove the "
                                              "undeclared columns from the data file")
    assert cli_words("nothing to rewrite", "data") == "nothing to rewrite"
