from lorebase.index.code_tokens import tokenize


def test_camel_and_pascal_case_split_and_whole_identifier_kept() -> None:
    assert tokenize("parseHTTPHeader") == ["parsehttpheader", "parse", "http", "header"]
    assert tokenize("HTMLParser") == ["htmlparser", "html", "parser"]


def test_snake_kebab_and_dotted_names() -> None:
    assert tokenize("get_user_name") == ["get_user_name", "get", "user", "name"]
    assert tokenize("max-file-bytes") == ["max-file-bytes", "max", "file", "bytes"]
    assert tokenize("os.path.join(x)") == ["os.path.join", "os", "path", "join", "x"]
    assert tokenize("__init__") == ["__init__", "init"]


def test_punctuation_dropped_and_lowercased() -> None:
    assert tokenize("Fix: crash!! (see #12)") == ["fix", "crash", "see", "12"]


def test_stop_words_dropped_only_from_prose() -> None:
    # "the" and "is" go as prose words; inside identifiers every part stays.
    assert tokenize("The parser is fast") == ["parser", "fast"]
    assert tokenize("is_the_one") == ["is_the_one", "is", "the", "one"]


def test_non_ascii_letters_stay_in_their_word() -> None:
    assert tokenize("CaféBar") == ["cafébar", "café", "bar"]


def test_stemming_joins_inflections_in_prose_and_identifier_parts() -> None:
    # "proxies" in a question meets the part "proxy" of get_proxy; the whole name stays exact.
    assert tokenize("proxies", "english") == tokenize("proxy", "english") == ["proxi"]
    assert tokenize("get_proxy", "english") == ["get_proxy", "get", "proxi"]
    assert tokenize("discussed the discussion", "english") == ["discuss", "discuss"]
    assert tokenize("parseHTTPHeaders", "english") == ["parsehttphead", "pars", "http", "header"]


def test_a_name_joined_only_by_case_meets_the_same_name_written_in_lowercase() -> None:
    # "BigQuery" in a question and the module bigquery.py, or the word "bigquery" in prose
    assert tokenize("BigQuery", "english")[0] == tokenize("bigquery", "english")[0] == "bigqueri"
    assert "bigqueri" in tokenize("dialects/bigquery.py", "english")
    assert tokenize("get_user_names", "english")[0] == "get_user_names"  # joined by "_": kept as written


def test_no_stemmer_keeps_words_as_written() -> None:
    assert tokenize("proxies discussed") == ["proxies", "discussed"]


def test_unknown_stemmer_is_a_clear_error() -> None:
    import pytest

    with pytest.raises(ValueError, match="no Snowball stemmer for 'klingon'"):
        tokenize("words", "klingon")


def test_languages_written_with_marks_meet_the_names_code_gives_them() -> None:
    # "C++" alone would be the letter c, the C domain's word; the code and its paths say cpp
    assert tokenize("the C++ domain parser", "english") == ["cpp", "domain", "parser"]
    assert "cpp" in tokenize("sphinx/domains/cpp/_ast.py", "english")
    assert tokenize("C/C++ and C# or F#") == ["c", "cpp", "csharp", "fsharp"]
    assert tokenize("C++11") == ["cpp11", "cpp", "11"]
    # the plain letter and other pluses are left alone
    assert tokenize("the C domain, a+b, abc++") == ["c", "domain", "b", "abc"]
