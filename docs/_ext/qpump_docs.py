"""Sphinx glue for qpump's documentation (loaded by docs/conf.py).

Each piece is a fix made in the documentation build, not in the modules it documents:

* ``plain_text_docstrings``: qpump's docstrings write physics in plain text (kets ``|01>``,
  moduli ``|chi_23|``, subscripts ``sigma_+``, ``*`` as a marker). reStructuredText would read
  ``|...|`` as a substitution, ``word_`` as a hyperlink and a lone ``*`` as the start of emphasis.
  These characters are escaped before numpydoc parses the docstring, outside inline literals,
  roles, literal blocks and doctests, so the text renders as written and real markup
  (``literals``, :func:`roles`, *emphasis*, ``Example::`` blocks) is untouched.
* ``resolve_python_names``: a reference that Sphinx cannot resolve is looked up the way Python
  would, in the module (and class) whose docstring holds it, and then sent to the page where
  that object is documented. ``:class:`InvalidStateError``` in ``qpump.states`` resolves to
  ``qpump.errors.InvalidStateError`` (imported there), ``qpump.quantum.run_aer_pump`` to
  ``qpump.quantum.aer_pump.run_aer_pump`` (a re-export). Failing that, a name that ends exactly
  one documented name (``HeatPump.memory_estimate`` where ``HeatPump`` is imported only inside a
  function) links there, as Sphinx does for ``.name``. A name that matches nothing, or more than
  one documented object, stays unresolved: with ``-W`` and ``nitpicky`` the build fails.
* ``skip_described_attributes``: a class attribute without a docstring of its own that the
  class docstring's numpydoc Attributes (or Parameters) section describes is not listed a second
  time as a bare member.
* ``dataclass_factory_defaults``: a dataclass field with a ``default_factory`` shows in the
  signature as ``<factory>``, which is not Python, so Sphinx falls back to splitting the signature
  at every comma (``dict[str, Any]`` becomes a reference to ``dict[str``). It is shown as the call
  it stands for (``HeatPump()``, ``dict()``).
* ``qpump-extras``: autodoc leaves out module constants without a ``#:`` comment even with
  ``undoc-members`` (Sphinx issue 1063); this directive documents the public constants (those in
  ``__all__``, and any named in ``:extra:``) that a module assigns, with their values, and the
  functions named in ``:extra:`` that other docstrings reference but ``__all__`` does not list.
* every public module of the package (``pkgutil.walk_packages``, no leading underscore) must
  have an API page, or the build warns (fails under ``-W``) naming the page to add;
  ``qpump_undocumented_modules`` in conf.py lists the exceptions.
* the tutorial must execute within ``qpump_notebook_budget_s`` (conf.py), or the build warns.
* ``qpump-cli``: the command-line reference, generated from ``qpump.cli.build_parser()``. argparse
  help is plain text, so it is put into the page as text (never parsed as markup): one section
  per subcommand with its summary, usage, description and options.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import importlib
import inspect
import re
from typing import Any

from docutils import nodes
from docutils.parsers.rst import Directive, directives
from docutils.statemachine import StringList
from sphinx.errors import PycodeError
from sphinx.pycode import ModuleAnalyzer
from sphinx.util import logging
from sphinx.util.nodes import nested_parse_with_titles

logger = logging.getLogger(__name__)

# --- plain-text docstrings ------------------------------------------------------------------------

# Inline literals, interpreted text with or without a role, and hyperlink references `...`_
_LITERAL = re.compile(r"(?::[\w:+.-]+:)?``.+?``|(?::[\w:+.-]+:)?`[^`]+`_{0,2}")
# *emphasis* and **strong**: a pair on one line, opening before a non-space, closing after one
_EMPHASIS = re.compile(r"(?<![\w*\\])(\*{1,2})(?=\S)(?:.+?)(?<=\S)\1(?![\w*])")
# a word ending in "_" followed by space, punctuation or the end: RST's "name_" reference
_TRAILING_UNDERSCORE = re.compile(r"(?<=\w)_(?=$|[\s.,;:!?)\]}'\"+\-/<>=|])")
# a numpydoc parameter line for *args / **kwargs (numpydoc escapes those stars itself)
_STAR_PARAMETER = re.compile(r"^\s*\*{1,2}\w+(\s*:.*)?$")


def _escape_plain(text: str) -> str:
    """Escape |, trailing _ and unpaired * in text that holds no literal or role."""
    text = text.replace("|", r"\|")
    text = _TRAILING_UNDERSCORE.sub(r"\\_", text)
    out, last = [], 0
    for m in _EMPHASIS.finditer(text):
        out.append(text[last:m.start()].replace("*", r"\*"))
        out.append(m.group(0))
        last = m.end()
    out.append(text[last:].replace("*", r"\*"))
    return "".join(out)


def escape_line(line: str) -> str:
    """Escape the plain-text markup characters of one docstring line, outside literals and roles."""
    if _STAR_PARAMETER.match(line):
        return line
    out, last = [], 0
    for m in _LITERAL.finditer(line):
        out.append(_escape_plain(line[last:m.start()]))
        out.append(m.group(0))
        last = m.end()
    out.append(_escape_plain(line[last:]))
    return "".join(out)


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def escape_docstring(lines: list[str]) -> list[str]:
    """Escape every line that is running text; literal blocks (after ``::``), directive bodies
    and doctest lines are copied as they are."""
    result: list[str] = []
    block_indent: int | None = None  # indentation of the paragraph that opened a literal block
    for line in lines:
        if block_indent is not None:
            if not line.strip() or _indent(line) > block_indent:
                result.append(line)
                continue
            block_indent = None
        stripped = line.strip()
        if stripped.startswith(">>>") or stripped.startswith("..."):
            result.append(line)
            continue
        if stripped.startswith(".. "):  # a directive: its body is copied as written
            result.append(line)
            block_indent = _indent(line)
            continue
        result.append(escape_line(line))
        if stripped.endswith("::"):
            block_indent = _indent(line)
    return result


def _borrowed_type_doc(what: str, name: str, obj: Any) -> bool:
    """True when autodoc would show a constant's type's docstring (numpy's ndarray, tuple) as
    the constant's own: a module constant documents itself only by a ``#:`` comment."""
    if what not in ("data", "attribute") or obj is None or isinstance(obj, type) or \
            inspect.isroutine(obj) or inspect.ismodule(obj):
        return False
    if what == "data":
        modname, _, attr = name.rpartition(".")
        try:
            return ("", attr) not in ModuleAnalyzer.for_module(modname).find_attr_docs()
        except PycodeError:
            return False
    return getattr(obj, "__doc__", None) == getattr(type(obj), "__doc__", None)


def _numpydoc_names(doc: str | None) -> set[str]:
    from numpydoc.docscrape import NumpyDocString

    if not doc:
        return set()
    try:
        parsed = NumpyDocString(inspect.cleandoc(doc))
    except Exception:  # a docstring numpydoc cannot parse: list every attribute
        return set()
    return {name.strip().lstrip("*") for section in ("Attributes", "Parameters")
            for entry in parsed[section] for name in entry.name.split(",")}


def plain_text_docstrings(app, what, name, obj, options, lines: list[str]) -> None:
    if _borrowed_type_doc(what, name, obj):
        lines[:] = []
        return
    lines[:] = escape_docstring(lines)


def skip_described_attributes(app, what, name, obj, skip, options):
    """Leave out an undocumented class attribute that the class docstring's Attributes (or, for a
    dataclass, Parameters) section already describes: it would be listed twice."""
    if what not in ("class", "exception") or inspect.isroutine(obj) or isinstance(obj, property):
        return None
    if getattr(obj, "__doc__", None) not in (None, getattr(type(obj), "__doc__", None)):
        return None  # documented itself
    current = getattr(app.env, "current_document", None)  # the class autodoc is documenting
    module, cls = getattr(current, "autodoc_module", None), getattr(current, "autodoc_class", None)
    if not module or not cls:
        return None
    try:
        owner = importlib.import_module(module)
        for part in cls.split("."):
            owner = getattr(owner, part)
    except (ImportError, AttributeError):
        return None
    return True if name in _numpydoc_names(owner.__doc__) else None


# --- references resolved the way Python resolves the name ------------------------------------------


def _lookup(dotted: str) -> tuple[Any, str] | None:
    """Import the longest module prefix of ``dotted`` and walk the rest with getattr; return the
    object and the dotted name under which it is documented (its defining module and qualname;
    for a data attribute, its owner's documented name plus the attribute)."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            owner: Any = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        name = owner.__name__
        for part in parts[cut:]:
            try:
                attr = getattr(owner, part)
            except AttributeError:
                if isinstance(owner, type) and part in getattr(owner, "__annotations__", {}):
                    return None, f"{name}.{part}"  # a dataclass field without a default
                return None
            module = getattr(attr, "__module__", None)
            qualname = getattr(attr, "__qualname__", None)
            if isinstance(module, str) and isinstance(qualname, str) and "<" not in qualname and (
                    isinstance(attr, type) or callable(attr)):
                name = f"{module}.{qualname}"
            elif inspect.ismodule(attr):
                name = attr.__name__
            else:
                name = f"{name}.{part}"
            owner = attr
        return owner, name
    return None


def resolve_python_names(app, env, node, contnode):
    if node.get("refdomain") != "py":
        return None
    target = node["reftarget"].lstrip("~.")
    module, cls = node.get("py:module"), node.get("py:class")
    scopes = [f"{module}.{cls}" if module and cls else None, module, None]
    domain = env.get_domain("py")
    for scope in scopes:
        found = _lookup(f"{scope}.{target}" if scope else target)
        if found is None:
            continue
        canonical = found[1]
        if canonical in domain.objects:
            return domain.resolve_xref(env, node["refdoc"], app.builder, "obj", canonical, node,
                                       contnode)
        # An attribute described in its class's numpydoc Attributes or Parameters section (and so
        # not listed on its own, see skip_described_attributes): link to the class.
        owner_name, _, attr = canonical.rpartition(".")
        owner = _lookup(owner_name)
        if owner is not None and owner[1] in domain.objects and isinstance(owner[0], type) and \
                attr in _numpydoc_names(owner[0].__doc__):
            return domain.resolve_xref(env, node["refdoc"], app.builder, "obj", owner[1], node,
                                       contnode)
    # A name the module does not import (it imports it inside a function, or not at all) that
    # ends exactly one documented name: Sphinx's own search for a ".name" reference.
    matches = [name for name in domain.objects if name.endswith("." + target)]
    if len(matches) == 1:
        return domain.resolve_xref(env, node["refdoc"], app.builder, "obj", matches[0], node,
                                   contnode)
    return None


# --- dataclass signatures ------------------------------------------------------------------------


def dataclass_factory_defaults(app, what, name, obj, options, signature, return_annotation):
    if not signature or "<factory>" not in signature or not dataclasses.is_dataclass(obj):
        return None
    for f in dataclasses.fields(obj):
        if f.init and f.default_factory is not dataclasses.MISSING:
            factory = getattr(f.default_factory, "__qualname__", "factory")
            signature = signature.replace("<factory>", f"{factory}()", 1)
    return signature, return_annotation


# --- module constants -----------------------------------------------------------------------------


def _assigned_names(module: Any) -> list[str]:
    """Names that a module's own source assigns at top level, in source order."""
    tree = ast.parse(inspect.getsource(module))
    names: list[str] = []
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else (
            [node.target] if isinstance(node, ast.AnnAssign) else [])
        for target in targets:
            for elt in (target.elts if isinstance(target, ast.Tuple) else [target]):
                if isinstance(elt, ast.Name):
                    names.append(elt.id)
    return names


class QpumpExtras(Directive):
    """``.. qpump-extras:: module``, after the module's ``automodule``: what autodoc leaves out.

    - "Constants": the public constants (``__all__``, plus the names in ``:extra:``) that the
      module assigns without a ``#:`` comment, with their values.
    - "Outside __all__": functions and classes named in ``:extra:`` that ``__all__`` does not list
      (referenced by documented docstrings or by the README). A name that ``__all__`` lists is
      skipped, as ``automodule`` documents it already.
    """

    required_arguments = 1
    option_spec = {"extra": directives.unchanged}

    def run(self) -> list[nodes.Node]:
        modname = self.arguments[0]
        module = importlib.import_module(modname)
        analyzer = ModuleAnalyzer.for_module(modname)
        commented = {name for (scope, name) in analyzer.find_attr_docs() if not scope}
        listed = set(getattr(module, "__all__", ()))
        extra = [n.strip() for n in self.options.get("extra", "").split(",") if n.strip()]
        constants, others = [], []
        for name in dict.fromkeys(_assigned_names(module)):
            if name not in listed | set(extra) or name in commented:
                continue
            value = getattr(module, name)
            if inspect.isclass(value) or inspect.isroutine(value) or inspect.ismodule(value):
                continue
            constants.append(f".. autodata:: {modname}.{name}")
            if len(repr(value)) > 80:
                constants.append("   :no-value:")
            constants.append("")
        for name in extra:
            value = getattr(module, name)  # a misspelt name fails the build here
            if name in listed or not (inspect.isclass(value) or inspect.isroutine(value)):
                continue
            others += [f".. auto{'class' if inspect.isclass(value) else 'function'}:: "
                       f"{modname}.{name}", ""]
        lines: list[str] = []
        if constants:
            lines += ["Constants", "---------", "", *constants]
        if others:
            lines += ["Outside ``__all__``", "-------------------", "", *others]
        if not lines:
            return []
        node = nodes.section()
        node.document = self.state.document
        nested_parse_with_titles(self.state, StringList(lines, source=f"<extras of {modname}>"), node)
        return list(node.children)


# --- the command-line reference -------------------------------------------------------------------


def _text_paragraphs(text: str | None) -> list[nodes.Node]:
    if not text:
        return []
    return [nodes.paragraph(text=" ".join(part.split())) for part in re.split(r"\n\s*\n", text)
            if part.strip()]


def _formatter(parser: argparse.ArgumentParser) -> argparse.HelpFormatter:
    return argparse.HelpFormatter(parser.prog, width=100)


def _option_list(parser: argparse.ArgumentParser) -> nodes.Node | None:
    formatter = _formatter(parser)
    items = nodes.definition_list()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) or action.help == argparse.SUPPRESS:
            continue
        term = nodes.term()
        term += nodes.literal(text=formatter._format_action_invocation(action))
        definition = nodes.definition()
        help_text = formatter._expand_help(action) if action.help else ""
        definition += nodes.paragraph(text=" ".join(help_text.split()))
        if action.choices is not None and not isinstance(action.choices, dict):
            choices = ", ".join(str(c) for c in action.choices)
            if choices not in help_text:
                definition += nodes.paragraph(text=f"choices: {choices}")
        item = nodes.definition_list_item()
        item += term
        item += definition
        items += item
    return items if len(items) else None


def _subcommands(parser: argparse.ArgumentParser) -> list[tuple[str, str, argparse.ArgumentParser]]:
    out = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help or "" for a in action._choices_actions}
            for name, sub in action.choices.items():
                out.append((name, helps.get(name, ""), sub))
    return out


class QpumpCli(Directive):
    """``.. qpump-cli:: module:function``: document the parser the function returns."""

    required_arguments = 1
    has_content = False
    option_spec = {"prog": directives.unchanged}

    def run(self) -> list[nodes.Node]:
        module_name, _, func_name = self.arguments[0].partition(":")
        parser = getattr(importlib.import_module(module_name), func_name)()
        if "prog" in self.options:
            parser.prog = self.options["prog"]
        return self._parser_nodes(parser, summary=None, top=True)

    def _section(self, title: str) -> nodes.section:
        section = nodes.section(ids=[nodes.make_id("cli " + title)],
                                names=[nodes.fully_normalize_name(title)])
        section += nodes.title(text=title)
        self.state.document.note_implicit_target(section)
        return section

    def _parser_nodes(self, parser: argparse.ArgumentParser, summary: str | None,
                      top: bool = False) -> list[nodes.Node]:
        body: list[nodes.Node] = []
        body += _text_paragraphs(summary)
        usage = parser.format_usage().strip()
        body.append(nodes.literal_block(usage, usage, language="text"))
        body += _text_paragraphs(parser.description)
        options = _option_list(parser)
        if options is not None:
            body.append(options)
        body += _text_paragraphs(parser.epilog)
        out: list[nodes.Node] = []
        if top:
            out += body
        else:
            section = self._section(parser.prog)
            section += body
            out.append(section)
        for _name, help_text, sub in _subcommands(parser):
            children = self._parser_nodes(sub, help_text)
            if top:
                out += children
            else:
                out[0] += children
        return out


# --- every public module has a page -------------------------------------------------------------


def check_every_module_documented(app, env) -> None:
    """Warn (an error under -W) for a public qpump module that no API page documents."""
    import pkgutil

    import qpump

    documented = {name for name, (_doc, _id, _synopsis, _platform, _dep)
                  in env.get_domain("py").data["modules"].items()}
    skip = set(app.config.qpump_undocumented_modules)
    for info in pkgutil.walk_packages(qpump.__path__, "qpump."):
        parts = info.name.split(".")
        if any(p.startswith("_") for p in parts) or info.name in skip or info.name in documented:
            continue
        logger.warning("module %s has no API page: add docs/api/%s.rst (automodule) and list it "
                       "in docs/api/index.rst", info.name, info.name, type="qpump", subtype="api")


# --- the tutorial's run time ----------------------------------------------------------------------


def check_notebook_run_time(app, env) -> None:
    """Log each executed notebook's run time; warn (an error under -W) above the budget."""
    from myst_nb.sphinx_ import NbMetadataCollector

    budget = app.config.qpump_notebook_budget_s
    for docname in sorted(env.found_docs):
        data = NbMetadataCollector.get_exec_data(env, docname) if docname in env.all_docs else None
        if not data or data.get("runtime") is None:
            continue
        runtime = data["runtime"]
        logger.info("%s executed in %.1f s (budget %g s)", docname, runtime, budget)
        if runtime > budget:
            logger.warning("%s took %.1f s to execute, over its budget of %g s: shorten its runs",
                           docname, runtime, budget, type="qpump", subtype="runtime")


def setup(app) -> dict:
    # before numpydoc (priority 500) parses the sections
    app.connect("autodoc-process-docstring", plain_text_docstrings, priority=400)
    app.connect("autodoc-process-signature", dataclass_factory_defaults)
    app.connect("autodoc-skip-member", skip_described_attributes)
    app.connect("missing-reference", resolve_python_names)
    app.add_directive("qpump-extras", QpumpExtras)
    app.add_directive("qpump-cli", QpumpCli)
    app.add_config_value("qpump_undocumented_modules", [], "env")
    app.add_config_value("qpump_notebook_budget_s", 120.0, "env", types=(int, float))
    app.connect("env-updated", lambda app, env: check_every_module_documented(app, env) or [])
    app.connect("env-updated", lambda app, env: check_notebook_run_time(app, env) or [])
    return {"parallel_read_safe": True, "parallel_write_safe": True}
