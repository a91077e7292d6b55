//! CQD's building data: the headerless CSV or TSV an operator keeps of their subnets, in CQD's
//! column order, and the lookup that gives a stream's subnet its building, network name, city,
//! country, region and whether it is inside the corporate network. Pure code.

use std::net::IpAddr;

/// CQD's columns, in order.
const COLUMNS: [&str; 15] = [
    "NetworkIP",
    "NetworkName",
    "NetworkRange",
    "BuildingName",
    "OwnershipType",
    "BuildingType",
    "BuildingOfficeType",
    "City",
    "ZipCode",
    "Country",
    "State",
    "Region",
    "InsideCorp",
    "ExpressRoute",
    "VPN",
];

/// Problems reported at most for one file: enough to fix a file, not a flood.
const MOST_PROBLEMS: usize = 100;

/// One subnet of the file, served under CQD's column names in camelCase.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Building {
    #[serde(rename = "networkIp")]
    pub(crate) network: IpAddr,
    #[serde(rename = "networkRange")]
    pub(crate) prefix: u8,
    pub(crate) network_name: String,
    pub(crate) building_name: String,
    pub(crate) ownership_type: String,
    pub(crate) building_type: String,
    pub(crate) building_office_type: String,
    pub(crate) city: String,
    pub(crate) zip_code: String,
    pub(crate) country: String,
    pub(crate) state: String,
    pub(crate) region: String,
    pub(crate) inside_corp: bool,
    pub(crate) express_route: bool,
    pub(crate) vpn: bool,
}

/// A line the file cannot be taken with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct LineProblem {
    pub(crate) line: u64,
    pub(crate) problem: String,
}

fn flag(text: &str, column: &str) -> Result<bool, String> {
    match text.trim() {
        "1" => Ok(true),
        "0" => Ok(false),
        other => Err(format!("{column} is '{other}', not 0 or 1")),
    }
}

/// `address` with every bit past the first `prefix` cleared: the subnet it is in.
fn masked(address: IpAddr, prefix: u8) -> IpAddr {
    match address {
        IpAddr::V4(address) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4((u32::from(address) & mask).into())
        }
        IpAddr::V6(address) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6((u128::from(address) & mask).into())
        }
    }
}

/// Whether `address` lies in `network/prefix` (of the same family).
fn contains(network: IpAddr, prefix: u8, address: IpAddr) -> bool {
    network.is_ipv4() == address.is_ipv4() && masked(address, prefix) == network
}

fn building(fields: &[&str]) -> Result<Building, String> {
    if fields.len() != COLUMNS.len() {
        return Err(format!(
            "{} columns where CQD's building file has {} ({})",
            fields.len(),
            COLUMNS.len(),
            COLUMNS.join(", ")
        ));
    }
    let field = |index: usize| fields[index].trim().to_owned();
    let network: IpAddr = fields[0]
        .trim()
        .parse()
        .map_err(|_| format!("NetworkIP '{}' is not an IP address", fields[0].trim()))?;
    let longest = if network.is_ipv4() { 32 } else { 128 };
    let prefix: u8 = fields[2]
        .trim()
        .parse()
        .ok()
        .filter(|prefix| *prefix <= longest)
        .ok_or_else(|| {
            format!(
                "NetworkRange '{}' is not a prefix length from 0 to {longest}",
                fields[2].trim()
            )
        })?;
    // The address must be the subnet's own: a host address with a range is a typing mistake.
    if masked(network, prefix) != network {
        return Err(format!(
            "NetworkIP {network} is not the first address of a /{prefix} subnet"
        ));
    }
    Ok(Building {
        network,
        prefix,
        network_name: field(1),
        building_name: field(3),
        ownership_type: field(4),
        building_type: field(5),
        building_office_type: field(6),
        city: field(7),
        zip_code: field(8),
        country: field(9),
        state: field(10),
        region: field(11),
        inside_corp: flag(fields[12], "InsideCorp")?,
        express_route: flag(fields[13], "ExpressRoute")?,
        vpn: flag(fields[14], "VPN")?,
    })
}

/// Reads a building file: tab-separated if its first line has a tab, comma-separated otherwise
/// (fields may be quoted). The whole file or nothing: any bad line refuses it, with the line
/// numbers and what is wrong, so the active file stays in place.
pub(crate) fn parse(text: &str) -> Result<Vec<Building>, Vec<LineProblem>> {
    let delimiter = if text.lines().next().is_some_and(|line| line.contains('\t')) {
        b'\t'
    } else {
        b','
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .delimiter(delimiter)
        .flexible(true)
        .trim(csv::Trim::None)
        .from_reader(text.as_bytes());
    let mut buildings: Vec<Building> = Vec::new();
    let mut problems = Vec::new();
    let mut seen = std::collections::HashMap::new();
    for record in reader.records() {
        if problems.len() >= MOST_PROBLEMS {
            break;
        }
        let record = match record {
            Ok(record) => record,
            Err(error) => {
                let line = error.position().map_or(0, |position| position.line());
                problems.push(LineProblem {
                    line,
                    problem: error.to_string(),
                });
                continue;
            }
        };
        let line = record.position().map_or(0, |position| position.line());
        let fields: Vec<&str> = record.iter().collect();
        if fields.iter().all(|field| field.trim().is_empty()) {
            continue;
        }
        match building(&fields) {
            Ok(building) => match seen.insert((building.network, building.prefix), line) {
                Some(first) => problems.push(LineProblem {
                    line,
                    problem: format!(
                        "{}/{} is listed on line {first} already",
                        building.network, building.prefix
                    ),
                }),
                None => buildings.push(building),
            },
            Err(problem) => problems.push(LineProblem { line, problem }),
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    if buildings.is_empty() {
        return Err(vec![LineProblem {
            line: 1,
            problem: "the file lists no subnet".to_owned(),
        }]);
    }
    Ok(buildings)
}

/// The buildings of the active file, looked up by a stream's subnet or address: the longest
/// prefix that contains it.
#[derive(Clone, Debug, Default)]
pub struct BuildingMap {
    /// Longest prefix first, so the first match is the most specific.
    buildings: Vec<Building>,
}

impl BuildingMap {
    pub(crate) fn new(mut buildings: Vec<Building>) -> Self {
        buildings.sort_by_key(|building| std::cmp::Reverse(building.prefix));
        Self { buildings }
    }

    /// The building of `address` (a subnet as Graph reports it, or an address), if any.
    pub(crate) fn lookup(&self, address: &str) -> Option<&Building> {
        let address: IpAddr = address.trim().parse().ok()?;
        self.buildings
            .iter()
            .find(|building| contains(building.network, building.prefix, address))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "\
10.0.0.0,HQ wired,24,Contoso HQ,Contoso,Office,Main,Redmond,98052,US,WA,NOAM,1,0,0
10.0.1.0,HQ wifi,24,Contoso HQ,Contoso,Office,Main,Redmond,98052,US,WA,NOAM,1,0,0
10.0.0.0,Campus,16,Contoso Campus,Contoso,Campus,,Redmond,98052,US,WA,NOAM,1,1,0
\"192.168.0.0\",\"Home, VPN\",16,Remote,,,,,,,,,0,0,1
";

    #[test]
    fn a_file_maps_subnets_to_buildings_by_longest_prefix() {
        let map = BuildingMap::new(parse(FILE).expect("a good file"));
        assert_eq!(map.lookup("10.0.1.0").unwrap().network_name, "HQ wifi");
        assert_eq!(map.lookup("10.0.0.77").unwrap().network_name, "HQ wired");
        assert_eq!(map.lookup("10.0.9.0").unwrap().building_name, "Contoso Campus");
        let home = map.lookup("192.168.3.0").unwrap();
        assert_eq!(
            (home.network_name.as_str(), home.vpn, home.inside_corp),
            ("Home, VPN", true, false)
        );
        assert!(map.lookup("172.16.0.0").is_none());
        assert!(map.lookup("not an address").is_none());
    }

    #[test]
    fn tab_separated_files_are_taken_too() {
        let tsv = FILE
            .lines()
            .take(2)
            .map(|line| line.replace(',', "\t"))
            .collect::<Vec<_>>()
            .join("\n");
        let buildings = parse(&tsv).expect("a TSV file");
        assert_eq!(buildings.len(), 2);
        assert_eq!(buildings[1].city, "Redmond");
    }

    #[test]
    fn bad_lines_refuse_the_file_with_their_numbers() {
        let bad = "\
10.0.0.0,HQ,24,HQ,,,,,,,,,1,0,0
10.0.0.300,HQ,24,HQ,,,,,,,,,1,0,0
10.0.0.5,HQ,24,HQ,,,,,,,,,1,0,0
10.0.2.0,HQ,33,HQ,,,,,,,,,1,0,0
10.0.3.0,HQ,24,HQ,,,,,,,,,yes,0,0
10.0.4.0,HQ,24
10.0.0.0,again,24,HQ,,,,,,,,,1,0,0
";
        let problems = parse(bad).unwrap_err();
        let lines: Vec<u64> = problems.iter().map(|problem| problem.line).collect();
        assert_eq!(lines, [2, 3, 4, 5, 6, 7], "{problems:?}");
        assert!(problems[0].problem.contains("NetworkIP"), "{problems:?}");
        assert!(problems[1].problem.contains("first address"), "{problems:?}");
        assert!(problems[2].problem.contains("NetworkRange"), "{problems:?}");
        assert!(problems[3].problem.contains("InsideCorp"), "{problems:?}");
        assert!(problems[4].problem.contains("3 columns"), "{problems:?}");
        assert!(problems[5].problem.contains("line 1 already"), "{problems:?}");
        assert!(parse("\n\n").is_err(), "an empty file");
    }

    #[test]
    fn ipv6_subnets_are_matched_too() {
        let map = BuildingMap::new(parse("2001:db8::,Lab,32,Lab,,,,,,,,,1,0,0").unwrap());
        assert_eq!(map.lookup("2001:db8:1::").unwrap().network_name, "Lab");
        assert!(map.lookup("2001:db9::").is_none());
        assert!(map.lookup("10.0.0.0").is_none());
    }
}
