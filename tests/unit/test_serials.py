"""T-2 and T-4: how printed serials and product code Nos are read."""

import pytest

from lifecycle.domain.errors import InvalidSerial
from lifecycle.domain.serials import normalise_code_no, normalise_serial, same_product


@pytest.mark.parametrize(
    ("printed", "serial"),
    [
        ("S/N:A1B2C3D4E5F6G7H8 A", "A1B2C3D4E5F6G7H8"),
        ("S/N: A1B2C3D4E5F6G7H8 ABC", "A1B2C3D4E5F6G7H8"),
        ("a1b2c3d4e5f6g7h8", "A1B2C3D4E5F6G7H8"),
        ("Ｓ／Ｎ：Ａ１Ｂ２Ｃ３Ｄ４Ｅ５Ｆ６Ｇ７Ｈ８　Ｂ", "A1B2C3D4E5F6G7H8"),
        ("  A1B2C3D4E5F6G7H8XYZ", "A1B2C3D4E5F6G7H8"),  # only the first 16 count
        ("S/N:12AB34 C", "12AB34"),  # shorter serials exist
        ("s/n:0123456789ABCDEF", "0123456789ABCDEF"),
    ],
)
def test_T2_serial_is_read_from_its_printed_form(printed: str, serial: str) -> None:
    assert normalise_serial(printed) == serial


@pytest.mark.parametrize("printed", ["", "   ", "S/N:", "S/N: -- A"])
def test_T2_input_without_a_serial_is_refused(printed: str) -> None:
    with pytest.raises(InvalidSerial):
        normalise_serial(printed)


def test_T4_product_code_prefix_of_5_digits_decides() -> None:
    assert normalise_code_no("No.:12345-01") == "1234501"
    assert same_product("12345-99", "No.:12345-01")
    assert same_product("１２３４５９９", "12345")
    assert not same_product("12346-01", "12345-01")
    assert not same_product("1234", "1234")  # too short to name a product
