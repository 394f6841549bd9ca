//! A plain aligned text table for list commands: a header row and columns padded to their
//! widest cell, separated by two spaces.
//!
//! Invariants: widths count characters, not bytes; the last column is never padded, so no
//! line ends in spaces; rows shorter than the header are padded with empty cells and longer
//! rows are cut to the header's width.

/// Rows of text under a header, rendered with aligned columns.
#[derive(Debug, Clone, Default)]
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column titles.
    pub fn new(header: &[&str]) -> Self {
        Table {
            header: header.iter().map(|h| (*h).to_string()).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds one row of cells, in header order.
    pub fn row<I, S>(&mut self, cells: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut row: Vec<String> = cells.into_iter().map(Into::into).collect();
        row.resize(self.header.len(), String::new());
        self.rows.push(row);
    }

    /// Whether no row was added.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The table as text, one line per row, each ending in a newline.
    pub fn render(&self) -> String {
        let cell_width = |s: &str| s.chars().count();
        let mut widths: Vec<usize> = self.header.iter().map(|h| cell_width(h)).collect();
        for row in &self.rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell_width(cell));
            }
        }
        let mut out = String::new();
        for row in std::iter::once(&self.header).chain(&self.rows) {
            let mut line = String::new();
            for (i, (cell, width)) in row.iter().zip(&widths).enumerate() {
                if i > 0 {
                    line.push_str("  ");
                }
                line.push_str(cell);
                if i + 1 < widths.len() {
                    line.extend(std::iter::repeat_n(' ', width - cell_width(cell)));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }

    /// Prints the table, or `empty` (to stdout) when it has no rows.
    pub fn print_or(&self, empty: &str) {
        if self.is_empty() {
            println!("{empty}");
        } else {
            print!("{}", self.render());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligns_columns_and_leaves_no_trailing_spaces() {
        let mut table = Table::new(&["ID", "NAME", "N"]);
        table.row(["app_1", "hello", "1"]);
        table.row(["app_22", "é", ""]);
        assert_eq!(
            table.render(),
            "ID      NAME   N\n\
             app_1   hello  1\n\
             app_22  é\n"
        );
    }

    #[test]
    fn short_rows_are_padded_and_long_rows_cut() {
        let mut table = Table::new(&["A", "B"]);
        table.row(["x"]);
        table.row(["1", "2", "3"]);
        assert_eq!(table.render(), "A  B\nx\n1  2\n");
    }

    #[test]
    fn empty_table_renders_only_the_header() {
        let table = Table::new(&["NUMBER", "APP"]);
        assert!(table.is_empty());
        assert_eq!(table.render(), "NUMBER  APP\n");
    }
}
