//! A flat table written a batch of rows at a time: as Parquet (Arrow arrays, zstd, row groups
//! of `ROW_GROUP_ROWS`) or as NDJSON objects with the same column names. Either way the bytes
//! are handed out as they are made, so memory holds a batch and, for Parquet, each column's
//! open page and dictionary, never the export: a row group's finished pages wait on disk
//! (`PageSpill`) until the group is written.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt as _;
use std::sync::{Arc, Mutex};

use arrow_array::builder::{
    BooleanBuilder, Decimal128Builder, Float64Builder, Int64Builder, StringBuilder, TimestampMicrosecondBuilder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use bytes::Bytes;
use parquet::arrow::arrow_writer::{ArrowWriterOptions, PageKey, PageStore, PageStoreArgs, PageStoreFactory};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::errors::ParquetError;
use parquet::file::properties::{EnabledStatistics, WriterProperties, WriterVersion};

use super::columns::{Cell, Column, Kind, Scopes, MONEY_SCALE};

/// Digits a money amount may have, all told: Arrow's largest 128-bit decimal.
const MONEY_PRECISION: u8 = 38;

/// Rows turned into Arrow arrays at a time.
const BATCH_ROWS: usize = 4096;
/// Rows in a Parquet row group: large enough for good compression and fast scans, and few
/// enough groups that the footer (every group's metadata, held in memory until the file
/// ends) stays small: closed by the writer's memory instead, the streams of a million
/// records made 1,417 groups and an export process of 393 MB.
pub(crate) const ROW_GROUP_ROWS: usize = 131_072;
/// And a row group is closed at this many encoded bytes, whichever comes first.
const ROW_GROUP_BYTES: usize = 64 << 20;
/// A column's page is compressed and set aside at this size. The writer holds every column's
/// open page: with Parquet's default of a megabyte, the 176 columns of the streams table kept
/// most of a row group uncompressed (a 188 MB export process, measured).
const DATA_PAGE_BYTES: usize = 32 << 10;
/// A column's dictionary stops growing here (and its values are written plainly), for the
/// same reason.
const DICTIONARY_PAGE_BYTES: usize = 128 << 10;
/// Minimum and maximum values kept in the footer are cut to this many bytes.
const STATISTICS_BYTES: usize = 32;
/// NDJSON is handed out in pieces of about this size.
const TEXT_CHUNK: usize = 1 << 20;
/// Every column's writer keeps a zstd context of its own for the whole row group: at level 3
/// the streams table's 176 contexts were 35 MB of an export's memory, at level 1 (Arrow's own
/// default) 15 MB, for a file 4 % larger.
const ZSTD_LEVEL: i32 = 1;

/// The bytes Parquet's writer has written and nobody has taken yet.
#[derive(Clone, Default)]
struct Written(Arc<Mutex<Vec<u8>>>);

impl Written {
    fn take(&self) -> Vec<u8> {
        std::mem::take(&mut *self.0.lock().expect("parquet output lock"))
    }
}

impl Write for Written {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("parquet output lock").extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Where a row group's finished pages wait until the group is written: Parquet keeps each
/// column's chunk contiguous, so every page of a group is held until the group closes, on
/// the heap by default (a group's compressed size, and more). An unnamed temporary file (gone
/// when the export ends, however it ends) holds them instead; once every page has been taken
/// back, the next group reuses it from the start, so it stays the size of one compressed
/// group.
#[derive(Debug, Clone)]
struct PageSpill(Arc<Mutex<Spilled>>);

#[derive(Debug)]
struct Spilled {
    file: File,
    /// Where the next page goes.
    end: u64,
    /// Pages put and not yet taken back.
    held: usize,
}

impl PageSpill {
    fn new() -> std::io::Result<Self> {
        Ok(Self(Arc::new(Mutex::new(Spilled {
            file: tempfile::tempfile()?,
            end: 0,
            held: 0,
        }))))
    }
}

impl PageStoreFactory for PageSpill {
    fn create(&self, _column: &PageStoreArgs<'_>) -> parquet::errors::Result<Box<dyn PageStore>> {
        Ok(Box::new(ColumnPages {
            spill: self.clone(),
            pages: Vec::new(),
        }))
    }
}

/// One column chunk's pages in the spill file: where each starts and how long it is.
struct ColumnPages {
    spill: PageSpill,
    pages: Vec<(u64, usize)>,
}

impl PageStore for ColumnPages {
    fn put(&mut self, page: Bytes) -> parquet::errors::Result<PageKey> {
        let mut spilled = self.spill.0.lock().expect("page spill lock");
        let at = spilled.end;
        spilled.file.write_all_at(&page, at).map_err(spill_failed)?;
        spilled.end = at + page.len() as u64;
        spilled.held += 1;
        self.pages.push((at, page.len()));
        Ok(PageKey::new(self.pages.len() as u64 - 1))
    }

    fn take(&mut self, key: PageKey) -> parquet::errors::Result<Bytes> {
        let &(at, len) = usize::try_from(key.get())
            .ok()
            .and_then(|index| self.pages.get(index))
            .ok_or_else(|| ParquetError::General(format!("no spilled page {}", key.get())))?;
        let mut page = vec![0; len];
        let mut spilled = self.spill.0.lock().expect("page spill lock");
        spilled.file.read_exact_at(&mut page, at).map_err(spill_failed)?;
        spilled.held -= 1;
        if spilled.held == 0 {
            spilled.end = 0;
        }
        Ok(page.into())
    }
}

fn spill_failed(error: std::io::Error) -> ParquetError {
    ParquetError::External(
        format!(
            "the temporary file holding a row group's pages (in {}): {error}",
            std::env::temp_dir().display()
        )
        .into(),
    )
}

enum Builder {
    Text(StringBuilder),
    Int(Int64Builder),
    Float(Float64Builder),
    Money(Decimal128Builder),
    Bool(BooleanBuilder),
    Time(TimestampMicrosecondBuilder),
}

impl Builder {
    fn of(kind: Kind) -> Self {
        match kind {
            Kind::Text | Kind::TextList | Kind::TypeName => Builder::Text(StringBuilder::new()),
            Kind::Int => Builder::Int(Int64Builder::new()),
            Kind::Float | Kind::DurationMs => Builder::Float(Float64Builder::new()),
            Kind::Money => Builder::Money(
                Decimal128Builder::new()
                    .with_precision_and_scale(MONEY_PRECISION, MONEY_SCALE as i8)
                    .expect("a valid decimal type"),
            ),
            Kind::Bool => Builder::Bool(BooleanBuilder::new()),
            Kind::Timestamp => Builder::Time(TimestampMicrosecondBuilder::new().with_timezone("UTC")),
        }
    }

    fn append(&mut self, cell: Cell<'_>) {
        match (self, cell) {
            (Builder::Text(builder), Cell::Text(text)) => builder.append_value(text),
            (Builder::Int(builder), Cell::Int(value)) => builder.append_value(value),
            (Builder::Float(builder), Cell::Float(value)) => builder.append_value(value),
            (Builder::Money(builder), Cell::Money(value)) => builder.append_value(value),
            (Builder::Bool(builder), Cell::Bool(value)) => builder.append_value(value),
            (Builder::Time(builder), Cell::Micros(value)) => builder.append_value(value),
            (Builder::Text(builder), _) => builder.append_null(),
            (Builder::Int(builder), _) => builder.append_null(),
            (Builder::Float(builder), _) => builder.append_null(),
            (Builder::Money(builder), _) => builder.append_null(),
            (Builder::Bool(builder), _) => builder.append_null(),
            (Builder::Time(builder), _) => builder.append_null(),
        }
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            Builder::Text(builder) => Arc::new(builder.finish()),
            Builder::Int(builder) => Arc::new(builder.finish()),
            Builder::Float(builder) => Arc::new(builder.finish()),
            Builder::Money(builder) => Arc::new(builder.finish()),
            Builder::Bool(builder) => Arc::new(builder.finish()),
            Builder::Time(builder) => Arc::new(builder.finish()),
        }
    }
}

fn data_type(kind: Kind) -> DataType {
    match kind {
        Kind::Text | Kind::TextList | Kind::TypeName => DataType::Utf8,
        Kind::Int => DataType::Int64,
        Kind::Float | Kind::DurationMs => DataType::Float64,
        Kind::Money => DataType::Decimal128(MONEY_PRECISION, MONEY_SCALE as i8),
        Kind::Bool => DataType::Boolean,
        Kind::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
    }
}

/// The Arrow schema of a table: every column nullable, as every Graph property is.
pub(crate) fn schema(columns: &[Column]) -> Arc<Schema> {
    Arc::new(Schema::new(
        columns
            .iter()
            .map(|column| Field::new(column.name.clone(), data_type(column.kind), true))
            .collect::<Vec<_>>(),
    ))
}

enum Encoding {
    Parquet {
        writer: Box<ArrowWriter<Written>>,
        written: Written,
        builders: Vec<Builder>,
        schema: Arc<Schema>,
        rows: usize,
    },
    Ndjson {
        text: Vec<u8>,
    },
}

/// A table being written.
pub(crate) struct TableWriter {
    columns: &'static [Column],
    encoding: Encoding,
    rows: u64,
}

impl TableWriter {
    pub(crate) fn parquet(columns: &'static [Column]) -> parquet::errors::Result<Self> {
        let schema = schema(columns);
        let properties = WriterProperties::builder()
            .set_writer_version(WriterVersion::PARQUET_2_0)
            .set_compression(Compression::ZSTD(ZstdLevel::try_new(ZSTD_LEVEL)?))
            .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
            .set_max_row_group_bytes(Some(ROW_GROUP_BYTES))
            .set_data_page_size_limit(DATA_PAGE_BYTES)
            .set_dictionary_page_size_limit(DICTIONARY_PAGE_BYTES)
            // The footer, with every row group's metadata, is held until the file ends: a
            // minimum and maximum per column chunk (not per page, and no page index) keeps it
            // to what readers use to skip row groups, whatever the export's size.
            .set_statistics_enabled(EnabledStatistics::Chunk)
            .set_offset_index_disabled(true)
            .set_statistics_truncate_length(Some(STATISTICS_BYTES))
            .set_created_by(format!("callrecords {}", env!("CARGO_PKG_VERSION")))
            .build();
        let written = Written::default();
        let options = ArrowWriterOptions::new()
            .with_properties(properties)
            .with_page_store_factory(Arc::new(PageSpill::new().map_err(spill_failed)?));
        let writer = ArrowWriter::try_new_with_options(written.clone(), schema.clone(), options)?;
        Ok(Self {
            columns,
            encoding: Encoding::Parquet {
                writer: Box::new(writer),
                written,
                builders: columns.iter().map(|column| Builder::of(column.kind)).collect(),
                schema,
                rows: 0,
            },
            rows: 0,
        })
    }

    pub(crate) fn ndjson(columns: &'static [Column]) -> Self {
        Self {
            columns,
            encoding: Encoding::Ndjson { text: Vec::new() },
            rows: 0,
        }
    }

    pub(crate) fn rows(&self) -> u64 {
        self.rows
    }

    /// Adds a row read from its objects; returns bytes ready to be handed out, if a batch was
    /// completed.
    pub(crate) fn push(&mut self, row: &Scopes<'_>) -> parquet::errors::Result<Option<Vec<u8>>> {
        let columns = self.columns;
        self.push_cells(columns.iter().map(|column| column.cell(row)))
    }

    /// Adds a row given as its cells, one a column in the table's order.
    pub(crate) fn push_cells<'a>(
        &mut self,
        cells: impl IntoIterator<Item = Cell<'a>>,
    ) -> parquet::errors::Result<Option<Vec<u8>>> {
        self.rows += 1;
        match &mut self.encoding {
            Encoding::Parquet { builders, rows, .. } => {
                for (builder, cell) in builders.iter_mut().zip(cells) {
                    builder.append(cell);
                }
                *rows += 1;
                if *rows < BATCH_ROWS {
                    return Ok(None);
                }
                self.write_batch()
            }
            Encoding::Ndjson { text } => {
                let mut object = serde_json::Map::with_capacity(self.columns.len());
                // A flat row of a sparse table is mostly nulls; a reader takes a missing member
                // for one, and the file is a fraction of the size.
                for (column, cell) in self.columns.iter().zip(cells) {
                    if cell != Cell::Null {
                        object.insert(column.name.clone(), json_value(cell));
                    }
                }
                serde_json::to_writer(&mut *text, &object)
                    .map_err(|error| parquet::errors::ParquetError::External(Box::new(error)))?;
                text.push(b'\n');
                Ok((text.len() >= TEXT_CHUNK).then(|| std::mem::take(text)))
            }
        }
    }

    fn write_batch(&mut self) -> parquet::errors::Result<Option<Vec<u8>>> {
        let Encoding::Parquet {
            writer,
            written,
            builders,
            schema,
            rows,
        } = &mut self.encoding
        else {
            return Ok(None);
        };
        if *rows > 0 {
            let arrays = builders.iter_mut().map(Builder::finish).collect::<Vec<_>>();
            let batch = RecordBatch::try_new(schema.clone(), arrays)?;
            writer.write(&batch)?;
            *rows = 0;
        }
        let bytes = written.take();
        Ok((!bytes.is_empty()).then_some(bytes))
    }

    /// Writes what is left (for Parquet, the last row group and the footer) and returns it.
    pub(crate) fn finish(mut self) -> parquet::errors::Result<Vec<u8>> {
        let mut tail = self.write_batch()?.unwrap_or_default();
        match self.encoding {
            Encoding::Parquet { writer, written, .. } => {
                writer.close()?;
                tail.extend(written.take());
                Ok(tail)
            }
            Encoding::Ndjson { text } => Ok(text),
        }
    }
}

/// A cell as NDJSON writes it: instants in Graph's ISO 8601 form, floats that JSON cannot
/// hold (NaN, infinities) as Graph's strings for them.
fn json_value(cell: Cell<'_>) -> serde_json::Value {
    use serde_json::Value;
    match cell {
        Cell::Null => Value::Null,
        Cell::Text(text) => Value::String(text.into_owned()),
        Cell::Int(value) => Value::from(value),
        Cell::Float(value) if value.is_nan() => Value::String("NaN".to_owned()),
        Cell::Float(value) if value.is_infinite() => Value::String(if value > 0.0 { "INF" } else { "-INF" }.to_owned()),
        Cell::Float(value) => serde_json::Number::from_f64(value).map_or(Value::Null, Value::Number),
        Cell::Money(units) => serde_json::Number::from_string_unchecked(
            rust_decimal::Decimal::from_i128_with_scale(units, MONEY_SCALE)
                .normalize()
                .to_string(),
        )
        .into(),
        Cell::Bool(value) => Value::Bool(value),
        Cell::Micros(micros) => crate::model::DateTimeOffset::from_unix_ticks(micros.saturating_mul(10))
            .map_or(Value::Null, |at| Value::String(at.to_string())),
    }
}
