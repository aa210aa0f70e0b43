//! The kinds of tokens and nodes a GraphQL syntax tree has: the input of the generator.

pub(crate) struct KindsSrc<'a> {
    /// (the text, the kind's name)
    pub(crate) punct: &'a [(&'a str, &'a str)],
    /// Each becomes `<NAME>_KW`.
    pub(crate) keywords: &'a [&'a str],
    pub(crate) literals: &'a [&'a str],
    pub(crate) tokens: &'a [&'a str],
    pub(crate) nodes: &'a [&'a str],
}

pub(crate) const KINDS_SRC: KindsSrc<'_> = KindsSrc {
    punct: &[
        ("&", "AMP"),
        ("@", "AT"),
        ("!", "BANG"),
        ("$", "DOLLAR"),
        ("=", "EQ"),
        (":", "COLON"),
        ("...", "SPREAD"),
        ("|", "PIPE"),
        ("{", "L_CURLY"),
        ("}", "R_CURLY"),
        ("[", "L_BRACK"),
        ("]", "R_BRACK"),
        ("(", "L_PAREN"),
        (")", "R_PAREN"),
    ],
    keywords: &[
        "query", "mutation", "subscription", "fragment", "on", "type", "interface", "union",
        "enum", "input", "scalar", "schema", "directive", "extend", "implements", "true",
        "false", "null",
    ],
    literals: &["INT_VALUE", "FLOAT_VALUE", "STRING_VALUE"],
    tokens: &["ERROR", "IDENT", "WHITESPACE", "COMMENT", "COMMA"],
    nodes: &[
        "DOCUMENT",
        "OPERATION_DEFINITION",
        "SELECTION_SET",
        "FIELD",
        "ALIAS",
        "ARGUMENTS",
        "ARGUMENT",
        "FRAGMENT_SPREAD",
        "FRAGMENT_DEFINITION",
        "VARIABLE_DEFINITIONS",
        "VARIABLE_DEFINITION",
        "VARIABLE",
        "NAMED_TYPE",
        "LIST_TYPE",
        "NON_NULL_TYPE",
        "DIRECTIVES",
        "DIRECTIVE",
    ],
};
