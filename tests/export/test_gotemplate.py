"""The Go text/template subset renderer that checks Ollama TEMPLATEs: Go's rules, and refusals outside the subset."""

from __future__ import annotations

import pytest

from personaforge.export.gotemplate import GoTemplateError, render

MESSAGES = [{"Role": "system", "Content": "S"}, {"Role": "user", "Content": "q1"},
            {"Role": "assistant", "Content": "a1"}, {"Role": "user", "Content": "q2"}]


def test_trim_markers_remove_all_adjacent_whitespace_and_nothing_else():
    assert render("a \n\t{{- .X -}} \n b", {"X": "x"}) == "axb"
    assert render("a \n{{ .X }} \nb", {"X": "x"}) == "a \nx \nb"
    assert render("a {{- /* note */ -}} b", {}) == "ab"


def test_range_with_index_last_marker_and_root_access():
    source = ('{{- range $i, $_ := .Messages }}{{- $last := eq (len (slice $.Messages $i)) 1 }}'
              '[{{ $i }}:{{ .Role }}{{ if $last }}!{{ end }}]{{- end }}')
    assert render(source, {"Messages": MESSAGES}) == "[0:system][1:user][2:assistant][3:user!]"


def test_if_else_chain_and_boolean_functions_follow_go():
    source = ('{{- range .Messages }}{{ if eq .Role "user" }}U{{ else if eq .Role "assistant" }}A'
              '{{ else }}-{{ end }}{{ end }}')
    assert render(source, {"Messages": MESSAGES}) == "-UAU"
    assert render('{{ and .A .B }}|{{ or .A .B }}|{{ not .A }}|{{ ne .A "" }}', {"A": "", "B": "b"}) == "|b|true|false"
    assert render('{{ eq .R "x" "y" }}', {"R": "y"}) == "true"  # eq with several operands: any match


def test_assignment_updates_an_outer_variable_across_iterations():
    source = '{{- $first := true }}{{- range .Messages }}{{ if $first }}F{{ end }}{{ $first = false }}{{ end }}'
    assert render(source, {"Messages": MESSAGES}) == "F"


def test_go_string_escapes():
    assert render(r'{{ "a\nb\t\"c\" \u00e9" }}', {}) == 'a\nb\t"c" é'


@pytest.mark.parametrize("source", [
    "{{ .X | printf }}",            # pipelines
    "{{ with .X }}{{ end }}",       # with
    "{{ index .M 0 }}",             # unsupported function
    "{{ if .X }}",                  # missing end
    "{{ end }}",                    # end without a block
    "{{ .X ",                       # unclosed action
])
def test_anything_outside_the_subset_is_refused(source):
    with pytest.raises(GoTemplateError):
        render(source, {"X": "x", "M": [1]})


def test_missing_fields_and_mismatched_comparisons_are_errors():
    with pytest.raises(GoTemplateError):
        render("{{ .Missing }}", {"X": 1})
    with pytest.raises(GoTemplateError):
        render('{{ eq .X "1" }}', {"X": 1})
