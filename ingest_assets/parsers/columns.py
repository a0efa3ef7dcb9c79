"""Spreadsheet column letters: `A` is column 0, `Z` 25, `AA` 26."""


def column_letters(index: int) -> str:
    """0 -> `A`, 26 -> `AA`."""
    letters = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        letters = chr(ord("A") + rem) + letters
    return letters


def column_index(letters: str) -> int:
    """`A` -> 0, `Z` -> 25, `AA` -> 26 (letters in either case)."""
    index = 0
    for char in letters.upper():
        index = index * 26 + (ord(char) - ord("A") + 1)
    return index - 1
