"""The adapters' ``groups=`` argument (``pluralrm.data.adapters.group_fields``)."""
import pytest

from pluralrm.data.adapters.group_fields import group_fields
from pluralrm.errors import ConfigError

KNOWN = {"country": "annotator_country", "age": "annotator_age", "gender": "annotator_gender"}


def test_none_keeps_every_known_attribute_and_names_pick_in_the_order_given():
    assert group_fields(None, KNOWN, "X") == KNOWN
    assert list(group_fields(["gender", "country"], KNOWN, "X").items()) == [
        ("gender", "annotator_gender"), ("country", "annotator_country")]
    assert group_fields([], KNOWN, "X") == {}


def test_a_mapping_is_taken_as_it_is_even_for_fields_the_adapter_does_not_list():
    assert group_fields({"lang": "assigned_lang"}, KNOWN, "X") == {"lang": "assigned_lang"}


def test_an_unknown_name_is_named_with_the_dataset_and_the_known_ones():
    with pytest.raises(ConfigError) as e:
        group_fields(["country", "religion"], KNOWN, "PRISM", "survey_field")
    assert str(e.value) == ("unknown PRISM group attribute 'religion': use one of ['country', 'age', 'gender'] "
                            "or pass a mapping {name: survey_field}")
