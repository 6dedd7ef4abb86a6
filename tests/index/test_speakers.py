"""Which speakers a question names: labels of real QMSum meetings (ICSI, AMI, Welsh and Canadian committees)."""

from __future__ import annotations

from lorebase.index.speakers import named_speakers

ICSI = ["Grad B", "Professor C", "Grad D", "Grad A", "Grad E", "Grad F"]
ICSI_PHD = ["Professor D", "PhD A", "PhD B", "Grad C", "Grad E"]
AMI = ["Project Manager", "Marketing", "Industrial Designer", "User Interface"]
WELSH = ["Kirsty Williams AM", "Eluned Morgan AM", "Julie Morgan AM", "Suzy Davies AM", "Huw Morris"]
CANADA = ["The Chair", "Right Hon. Justin Trudeau", "Hon. Chrystia Freeland", "Mr. Pierre Paul-Hus",
          "Mr. Stéphane Bergeron", "Hon. Bill Blair", "Mr. Will Amos"]


def test_whole_labels_in_any_position_and_case_of_the_rest() -> None:
    assert named_speakers("What did PhD A think about the results?", ICSI_PHD) == {"PhD A"}
    assert named_speakers("What did Grad D and Grad C discuss about the wizard?", ICSI + ["Grad C"]) == {"Grad D", "Grad C"}
    assert named_speakers("Why did User Interface think they needed more buttons?", AMI) == {"User Interface"}
    assert named_speakers("What did Marketing think about Project Manager's system?", AMI) == {"Marketing", "Project Manager"}
    assert named_speakers("What did Kirsty Williams AM suggest about home study?", WELSH) == {"Kirsty Williams AM"}


def test_a_label_written_as_an_ordinary_word_is_not_a_speaker() -> None:
    assert named_speakers("What was decided about the marketing budget?", AMI) == set()
    assert named_speakers("What did the group think of the user interface?", AMI) == set()
    assert named_speakers("What did Hon. Ahmed Hussen think about the bill for the disabilities?", CANADA) == set()


def test_the_name_without_honorifics() -> None:
    assert named_speakers("What was Kirsty Williams' opinion of the decision?", WELSH) == {"Kirsty Williams AM"}
    assert named_speakers("What did Chrystia Freeland think about systemic racism?", CANADA) == {"Hon. Chrystia Freeland"}
    assert named_speakers("What did JustinTrudeau elaborate on the fund?", CANADA) == {"Right Hon. Justin Trudeau"}
    assert named_speakers("Did the Prime Minister agree with Mr. Pierre Paul-Hus?", CANADA) == {"Mr. Pierre Paul-Hus"}
    assert named_speakers("What did the Chair say about the rules?", CANADA) == {"The Chair"}


def test_one_word_of_one_speaker_only() -> None:
    assert named_speakers("What did Paul-Hus think about petitions?", CANADA) == {"Mr. Pierre Paul-Hus"}
    assert named_speakers("What did Bergeron think of the cooperation?", CANADA) == {"Mr. Stéphane Bergeron"}
    # Two Morgans: the surname alone names nobody, the full name one of them.
    assert named_speakers("What did Morgan say about pay?", WELSH) == set()
    assert named_speakers("How did Eluned Morgan respond on pay?", WELSH) == {"Eluned Morgan AM"}
    # Not the question's first word: "Will the government ..." is no Mr. Will Amos.
    assert named_speakers("Will the government enhance the summer jobs program?", CANADA) == set()


def test_a_role_word_only_when_one_speaker_has_it() -> None:
    assert named_speakers("What did the Professor think about the results?", ICSI_PHD) == {"Professor D"}
    assert named_speakers("What did the professor think about MSG?", ICSI_PHD) == {"Professor D"}
    # Several PhDs and grads: the role alone is ambiguous.
    assert named_speakers("What did the PhD students think about noise?", ICSI_PHD) == set()
    assert named_speakers("What did the Professor think?", ["Professor A", "Professor B", "PhD C"]) == set()


def test_the_letter_of_a_letter_label() -> None:
    assert named_speakers("What did C think about setting up the recording equipment?", ICSI) == {"Professor C"}
    assert named_speakers("What did Speaker C say about detecting speech?", ICSI) == {"Professor C"}
    assert named_speakers("How did C's view differ from B's?", ICSI) == {"Professor C", "Grad B"}
    assert named_speakers("What did A think about the equipment?", ICSI) == {"Grad A"}
    # The article at the start, a lower-case letter, a letter inside an abbreviation or a name: nobody.
    assert named_speakers("A question about the equipment?", ICSI) == set()
    assert named_speakers("what did c think about the equipment?", ICSI) == set()
    assert named_speakers("What did the U.S. team say?", ["Grad U", "Grad S"]) == set()
    assert named_speakers("What was said about the C-level plan?", ICSI) == set()
    # "I" is the pronoun; a letter two labels share names neither.
    assert named_speakers("What did I miss?", ["Grad I", "Grad J"]) == set()
    assert named_speakers("What did B think?", ["Grad B", "PhD B"]) == set()


def test_a_question_in_lower_case_matches_names_without_case() -> None:
    assert named_speakers("what did kirsty williams say about teacher recruiting", WELSH) == {"Kirsty Williams AM"}
    assert named_speakers("what did marketing think of the lcd screen", AMI) == {"Marketing"}


def test_nothing_to_match() -> None:
    assert named_speakers("What did the team discuss about volume?", ICSI) == set()
    assert named_speakers("", WELSH) == set()
    assert named_speakers("What did Kirsty Williams say?", []) == set()
    assert named_speakers("What did Kirsty Williams say?", ["", "  "]) == set()
    # Speakers of another meeting are not named by this meeting's labels.
    assert named_speakers("What did Kirsty Williams say?", AMI) == set()
