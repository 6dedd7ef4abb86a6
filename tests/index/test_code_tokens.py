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
