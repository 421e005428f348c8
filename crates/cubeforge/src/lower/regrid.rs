//! `regrid`: an input's gridded variables onto the recipe's `grid`, each by the method the
//! recipe gives it ([`crate::ops::regrid`]). The source grid comes from the variables'
//! coordinates (regular within 1e-6 px) and CRS (its grid mapping, or longitude/latitude
//! coordinates taken as EPSG:4326, or `source_crs`); the spatial dimensions are replaced by the
//! grid's (`lat`/`lon` or `y`/`x`) with computed coordinates, and the cube gets the grid's
//! `spatial_ref` ([`State::add_grid_mapping`]).

use std::sync::Arc;

use serde_json::{Map, Value};

use super::{op_err, Dim, State, Var};
use crate::cf::CfDecoding;
use crate::coord::Coord;
use crate::dtype::DType;
use crate::error::Result;
use crate::formats::geotiff::cf_attrs;
use crate::geo::pixel_map::PixelMap;
use crate::geo::{py_float, spec, Crs, GeoBox};
use crate::ops::regrid::Regrid;
use crate::ops::resample::Held;
use crate::plan::{Node, Op, VType};
use crate::recipe::{Method, MethodSpec, Operation, RegridSpec};

/// The name of the grid's CRS variable, as rioxarray and odc-geo write it.
pub(super) const SPATIAL_REF: &str = "spatial_ref";

/// Names a dimension of longitudes (or eastings) goes by, and of latitudes (or northings).
const X_NAMES: [&str; 3] = ["x", "lon", "longitude"];
const Y_NAMES: [&str; 3] = ["y", "lat", "latitude"];

impl State<'_> {
    /// Apply `regrid`.
    pub(super) fn regrid(&mut self, i: usize, op: &Operation, r: &RegridSpec) -> Result<()> {
        let doc = self.doc;
        let err = |m: String| op_err(doc, i, op, m);
        let dst = self.target_grid(i, op)?;
        let (src, ydim, xdim, gridded) = self.source_grid(r.source_crs.as_deref()).map_err(&err)?;
        let methods = methods_of(r, &gridded).map_err(&err)?;
        if !(r.error_threshold >= 0.0 && r.error_threshold.is_finite()) {
            return Err(err(format!(
                "error_threshold must be a finite number of pixels >= 0, not {}",
                r.error_threshold
            )));
        }
        let map = Arc::new(PixelMap::new(src, dst.clone(), r.error_threshold).map_err(&err)?);
        let [dy, dx] = self.grid_dims(&dst);
        for d in [&dy, &dx] {
            if *d != ydim && *d != xdim && self.dims.contains_key(d) {
                return Err(err(format!(
                    "the grid's dimension '{d}' is already a dimension of this input"
                )));
            }
        }
        // Variables along one spatial dimension only (bounds, 1-D profiles) and the source's
        // grid mappings cannot follow the grid: they are left out.
        let mappings: Vec<String> = gridded
            .iter()
            .filter_map(|n| {
                self.vars[n]
                    .attrs
                    .get("grid_mapping")?
                    .as_str()
                    .map(String::from)
            })
            .collect();
        self.vars.retain(|k, v| {
            let along = v.node.dims.contains(&ydim) || v.node.dims.contains(&xdim);
            // The gridded variables always stay (even one named like a grid mapping).
            gridded.contains(k) || (!along && !mappings.contains(k) && k != SPATIAL_REF)
        });
        self.drop_texts_along(&ydim);
        self.drop_texts_along(&xdim);
        for name in &gridded {
            let method = methods[name];
            self.check_method(i, op, r, name, method)?;
            let var = &self.vars[name];
            let node = var.node.clone();
            let (ya, xa) = (
                node.dims.iter().position(|d| *d == ydim).unwrap_or(0),
                node.dims.iter().position(|d| *d == xdim).unwrap_or(0),
            );
            let mut dims = node.dims.clone();
            let mut shape = node.shape.clone();
            (dims[ya], dims[xa]) = (dy.clone(), dx.clone());
            (shape[ya], shape[xa]) = (dst.shape[0], dst.shape[1]);
            let vtype = node.vtype;
            let stored = match &node.op {
                Op::Source { decoding, .. } if categorical(decoding) => Some(decoding.stored),
                _ => None,
            };
            let mut regrid = Regrid::new(
                node,
                map.clone(),
                method,
                [ya, xa],
                integer_fill(&var.attrs, vtype),
            );
            if let (Some(d), true) = (stored, matches!(vtype, VType::F32 | VType::F64)) {
                regrid = regrid.rounded_to(d);
            }
            let new = Node::new(Op::Window(Arc::new(regrid)), dims, shape, vtype);
            self.check_depth(i, op, name, &new)?;
            if let Some(v) = self.vars.get_mut(name) {
                v.node = new;
                v.attrs
                    .insert("grid_mapping".into(), Value::from(SPATIAL_REF));
            }
        }
        self.replace_spatial_dims(&ydim, &xdim, &dst);
        self.grid = Some(dst);
        Ok(())
    }

    /// The grid of this state's gridded variables (those along both spatial dimensions), its
    /// spatial dimensions and those variables; `source_crs` names the CRS when the input does
    /// not.
    ///
    /// # Errors
    /// No spatial dimensions, no variable on them, no CRS, irregular coordinates.
    pub fn source_grid(
        &self,
        source_crs: Option<&str>,
    ) -> std::result::Result<(GeoBox, String, String, Vec<String>), String> {
        let (ydim, xdim) = self.spatial_dims()?;
        let gridded: Vec<String> = self
            .vars
            .iter()
            .filter(|(_, v)| v.node.dims.contains(&ydim) && v.node.dims.contains(&xdim))
            .map(|(k, _)| k.clone())
            .collect();
        if gridded.is_empty() {
            return Err(format!("no variable has both '{ydim}' and '{xdim}'"));
        }
        let src_crs = self.source_crs(source_crs, &gridded, &xdim)?;
        let (ys, _) = self.coord_values(&ydim).map_err(|e| e.to_string())?;
        let (xs, _) = self.coord_values(&xdim).map_err(|e| e.to_string())?;
        let mut src =
            GeoBox::from_axes(src_crs, &ys, &xs).map_err(|m| format!("{ydim}/{xdim}: {m}"))?;
        if let Some(gt) = self.geo_transform(&gridded) {
            src.affine = exact_affine(&src, gt);
        }
        Ok((src, ydim, xdim, gridded))
    }

    /// The recipe's target grid.
    fn target_grid(&self, i: usize, op: &Operation) -> Result<GeoBox> {
        let doc = self.doc;
        let Some(g) = &doc.recipe.grid else {
            return Err(op_err(
                doc,
                i,
                op,
                "regrid needs a target grid: add a `grid:` block to the recipe",
            ));
        };
        match spec::resolve(doc, g)? {
            Some(gb) => Ok(gb),
            None => self.like.as_ref().map(|l| l.geobox.clone()).ok_or_else(|| {
                spec::grid_err(doc, "like", "the input named by `like` has no grid to take")
            }),
        }
    }

    /// The dimensions of rows and columns: one dimension named as longitudes or x (or whose
    /// coordinate says so) and one as latitudes or y.
    fn spatial_dims(&self) -> std::result::Result<(String, String), String> {
        let find = |names: &[&str], axis: &str, std: &[&str]| -> Vec<String> {
            self.dims
                .iter()
                .filter(|(name, d)| {
                    names.contains(&name.as_str())
                        || d.coord.as_ref().is_some_and(|c| {
                            c.attrs.get("axis").and_then(Value::as_str) == Some(axis)
                                || c.attrs
                                    .get("standard_name")
                                    .and_then(Value::as_str)
                                    .is_some_and(|s| std.contains(&s))
                        })
                })
                .map(|(n, _)| n.clone())
                .collect()
        };
        let xs = find(
            &X_NAMES,
            "X",
            &["longitude", "projection_x_coordinate", "grid_longitude"],
        );
        let ys = find(
            &Y_NAMES,
            "Y",
            &["latitude", "projection_y_coordinate", "grid_latitude"],
        );
        match (ys.as_slice(), xs.as_slice()) {
            ([y], [x]) => Ok((y.clone(), x.clone())),
            _ => Err(format!(
                "cannot tell the grid's dimensions: need one of {} (or axis: Y) and one of {} \
                 (or axis: X) among the dimensions {}",
                Y_NAMES.join("/"),
                X_NAMES.join("/"),
                self.dim_names()
            )),
        }
    }

    /// The source's CRS: `source_crs`, else the grid mapping's WKT, else EPSG:4326 for
    /// longitude/latitude coordinates.
    fn source_crs(
        &self,
        source_crs: Option<&str>,
        gridded: &[String],
        xdim: &str,
    ) -> std::result::Result<Crs, String> {
        if let Some(text) = source_crs {
            return Crs::parse(text).map_err(|m| format!("source_crs: {m}"));
        }
        for name in gridded {
            let Some(gm) = self.vars[name]
                .attrs
                .get("grid_mapping")
                .and_then(Value::as_str)
            else {
                continue;
            };
            let Some(mapping) = self.vars.get(gm) else {
                continue;
            };
            for key in ["crs_wkt", "spatial_ref"] {
                if let Some(wkt) = mapping.attrs.get(key).and_then(Value::as_str) {
                    return Crs::from_wkt(wkt)
                        .map_err(|m| format!("the grid mapping '{gm}' of '{name}': {m}"));
                }
            }
            // A CF grid mapping without WKT (a rotated pole, a projection by parameters) is
            // not taken for longitude/latitude.
            let kind = mapping
                .attrs
                .get("grid_mapping_name")
                .and_then(Value::as_str)
                .unwrap_or("unnamed");
            if kind != "latitude_longitude" {
                return Err(format!(
                    "the grid mapping '{gm}' of '{name}' ({kind}) has no crs_wkt to read the \
                     CRS from: give regrid.source_crs"
                ));
            }
        }
        let units = self.dims[xdim].coord.as_ref().and_then(|c| {
            c.attrs
                .get("units")
                .and_then(Value::as_str)
                .map(String::from)
        });
        let lon_units = units.as_deref().is_some_and(|u| u.starts_with("degree"));
        if ["lon", "longitude"].contains(&xdim) || lon_units {
            return Crs::from_epsg(4326);
        }
        Err(format!(
            "the input names no CRS for '{xdim}' (no grid_mapping with crs_wkt): give \
             regrid.source_crs"
        ))
    }

    /// The `GeoTransform` of the gridded variables' grid mapping, when it has one.
    fn geo_transform(&self, gridded: &[String]) -> Option<[f64; 6]> {
        let gm = gridded
            .iter()
            .find_map(|n| self.vars[n].attrs.get("grid_mapping")?.as_str())?;
        let text = self.vars.get(gm)?.attrs.get("GeoTransform")?.as_str()?;
        let v: Vec<f64> = text
            .split_whitespace()
            .filter_map(|t| t.parse().ok())
            .collect();
        <[f64; 6]>::try_from(v).ok()
    }

    /// Refuse an interpolating method on a categorical variable (integers, not packed).
    fn check_method(
        &self,
        i: usize,
        op: &Operation,
        r: &RegridSpec,
        name: &str,
        method: Method,
    ) -> Result<()> {
        if !method.interpolates() || r.interpolate_integers {
            return Ok(());
        }
        let node = &self.vars[name].node;
        let categorical = match &node.op {
            Op::Source { decoding, .. } => categorical(decoding),
            _ => matches!(node.vtype, VType::Int(_)),
        };
        if categorical {
            return Err(op_err(
                self.doc,
                i,
                op,
                format!(
                    "'{name}' holds integers (a categorical map?): {} would make values it does \
                     not have; use mode or nearest, or set interpolate_integers: true",
                    method.name()
                ),
            ));
        }
        Ok(())
    }

    /// The names of the grid's dimensions: the `like` input's, or `lat`/`lon` (`y`/`x`).
    fn grid_dims(&self, dst: &GeoBox) -> [String; 2] {
        match self.like.as_ref().filter(|l| l.geobox == *dst) {
            Some(l) => l.dims.clone(),
            None => dst.dims().map(String::from),
        }
    }

    /// The spatial dimensions replaced by the grid's, with computed coordinates (the `like`
    /// input's own, when the grid is that input's), in place.
    fn replace_spatial_dims(&mut self, ydim: &str, xdim: &str, dst: &GeoBox) {
        let like = self.like.clone().filter(|l| l.geobox == *dst);
        let names = self.grid_dims(dst);
        let axes = dst.axes();
        let geographic = dst.crs.is_geographic();
        let dims = std::mem::take(&mut self.dims);
        for (name, d) in dims {
            let which = if name == ydim {
                Some(0)
            } else if name == xdim {
                Some(1)
            } else {
                None
            };
            let Some(k) = which else {
                self.dims.insert(name, d);
                continue;
            };
            let a = axes[k];
            let coord = match &like {
                Some(l) => l.coords[k].clone(),
                None => Some(Coord::computed(
                    a.start,
                    a.step,
                    a.len,
                    DType::Float64,
                    coord_attrs(k == 1, geographic),
                    CfDecoding::identity(DType::Float64),
                )),
            };
            self.dims.insert(
                names[k].clone(),
                Dim {
                    len: a.len,
                    index: Arc::new((0..a.len).collect()),
                    coord,
                    bound_only: false,
                },
            );
        }
    }

    /// The grid's `spatial_ref` variable, when a `regrid` put variables on the grid: a scalar
    /// int32 (the EPSG code, 0 for none, as odc-geo writes it) with `crs_wkt`, `spatial_ref`,
    /// the CF grid-mapping attributes and `GeoTransform`, as rioxarray writes it.
    pub(super) fn add_grid_mapping(&mut self) {
        let Some(gb) = &self.grid else {
            return;
        };
        let uses = self
            .vars
            .values()
            .any(|v| v.attrs.get("grid_mapping").and_then(Value::as_str) == Some(SPATIAL_REF));
        if !uses || self.vars.contains_key(SPATIAL_REF) {
            return;
        }
        let mut attrs = Map::new();
        attrs.insert("crs_wkt".into(), Value::from(gb.crs.wkt.clone()));
        attrs.extend(cf_attrs(&gb.crs.wkt));
        attrs.insert("spatial_ref".into(), Value::from(gb.crs.wkt.clone()));
        let gt: Vec<String> = gb.affine.gdal().iter().map(|v| py_float(*v)).collect();
        attrs.insert("GeoTransform".into(), Value::from(gt.join(" ")));
        let code = f64::from(gb.crs.epsg.unwrap_or(0));
        let node = Node::new(
            Op::Window(Arc::new(Held::new(vec![code]))),
            Vec::new(),
            Vec::new(),
            VType::Int(DType::Int32),
        );
        self.vars.insert(SPATIAL_REF.into(), Var { node, attrs });
    }
}

/// The grid of an input's gridded variables as opened (CRS, affine, shape), for `info`; `None`
/// when it has none (no spatial dimensions, no CRS, irregular coordinates).
#[must_use]
pub fn grid_of_input(input: &super::Input) -> Option<GeoBox> {
    let doc =
        crate::recipe::RecipeDoc::parse("info", "version: 1\ninputs: {input: {url: input}}\n")
            .ok()?;
    let mut scratch = crate::source::Sources::default();
    let state = State::new(&doc, input, &mut scratch, true);
    state.source_grid(None).ok().map(|(gb, ..)| gb)
}

/// The method of each gridded variable.
fn methods_of(
    r: &RegridSpec,
    gridded: &[String],
) -> std::result::Result<indexmap::IndexMap<String, Method>, String> {
    match &r.method {
        MethodSpec::One(m) => Ok(gridded.iter().map(|n| (n.clone(), *m)).collect()),
        MethodSpec::PerVariable(map) => {
            for k in map.keys() {
                if k != "_default" && !gridded.contains(k) {
                    return Err(format!(
                        "method: '{k}' is not a variable on the source grid (those are: {})",
                        gridded.join(", ")
                    ));
                }
            }
            gridded
                .iter()
                .map(|n| {
                    map.get(n)
                        .or_else(|| map.get("_default"))
                        .map(|m| (n.clone(), *m))
                        .ok_or_else(|| {
                            format!(
                                "method: no method for '{n}' (name it, or give `_default:` for \
                                 the rest)"
                            )
                        })
                })
                .collect()
        }
    }
}

/// Whether a variable decoded by `d` is categorical: integers, not packed.
fn categorical(d: &CfDecoding) -> bool {
    d.stored.is_integer() && d.scale_factor.is_none() && d.add_offset.is_none()
}

/// The fill value of an integer variable (its `_FillValue`), which marks pixels without a value.
fn integer_fill(attrs: &Map<String, Value>, vtype: VType) -> Option<f64> {
    match vtype {
        VType::Int(_) => Some(
            attrs
                .get("_FillValue")
                .and_then(Value::as_f64)
                .unwrap_or(0.0),
        ),
        _ => None,
    }
}

/// The source affine with the grid mapping's exact `GeoTransform` resolution and an origin a
/// whole number of its pixels from it, when the coordinates agree with it (a raster's
/// coordinates are its transform's centres, rounded).
fn exact_affine(src: &GeoBox, gt: [f64; 6]) -> crate::geo::Affine {
    let [a, _, c, _, e, f] = src.affine.0;
    let close = |x: f64, y: f64| (x - y).abs() <= 1e-9 * y.abs();
    if gt[2] != 0.0 || gt[4] != 0.0 || !close(a, gt[1]) || !close(e, gt[5]) {
        return src.affine;
    }
    let kx = ((c - gt[0]) / gt[1]).round();
    let ky = ((f - gt[3]) / gt[5]).round();
    let (ox, oy) = (gt[0] + kx * gt[1], gt[3] + ky * gt[5]);
    if (ox - c).abs() > 1e-6 * gt[1].abs() || (oy - f).abs() > 1e-6 * gt[5].abs() {
        return src.affine;
    }
    crate::geo::Affine([gt[1], 0.0, ox, 0.0, gt[5], oy])
}

/// The attributes of a grid coordinate, as odc-geo and rioxarray find them.
fn coord_attrs(x: bool, geographic: bool) -> Map<String, Value> {
    let mut m = Map::new();
    let (std, units, axis, long) = match (x, geographic) {
        (true, true) => ("longitude", "degrees_east", "X", "longitude"),
        (false, true) => ("latitude", "degrees_north", "Y", "latitude"),
        (true, false) => (
            "projection_x_coordinate",
            "metre",
            "X",
            "x coordinate of projection",
        ),
        (false, false) => (
            "projection_y_coordinate",
            "metre",
            "Y",
            "y coordinate of projection",
        ),
    };
    m.insert("standard_name".into(), Value::from(std));
    m.insert("long_name".into(), Value::from(long));
    m.insert("units".into(), Value::from(units));
    m.insert("axis".into(), Value::from(axis));
    m
}
