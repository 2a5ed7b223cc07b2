//! How a file system is linked to S3 ([`Links`]): its own `DataRepositoryConfiguration`
//! (`DescribeFileSystems`; the older deployment types) or else its data repository associations
//! (`DescribeDataRepositoryAssociations` filtered by `file-system-id`, every page).

use aws_sdk_fsx::Client;
use aws_sdk_fsx::operation::describe_data_repository_associations::DescribeDataRepositoryAssociationsError as AssociationsError;
use aws_sdk_fsx::operation::describe_file_systems::DescribeFileSystemsError as FileSystemsError;
use aws_sdk_fsx::types::{DataRepositoryAssociation, Filter, FilterName};

use super::super::{Class, classify, send};
use crate::domain::links::{Association, Links};
use crate::error::FerryError;
use crate::ids::FileSystemId;

/// The file system's links, read now.
pub(crate) async fn read_links(client: &Client, fs: &FileSystemId) -> Result<Links, FerryError> {
    let request = client
        .describe_file_systems()
        .file_system_ids(fs.as_str())
        .send();
    let described = send("DescribeFileSystems", request, |e| match e {
        FileSystemsError::FileSystemNotFound(_) => Some(Class::NotFound),
        FileSystemsError::BadRequest(_) => Some(Class::Rejected),
        _ => None,
    })
    .await?;
    if described.file_systems().is_empty() {
        return Err(FerryError::NotFound {
            message: format!("file system {fs} was not found"),
            source: None,
        });
    }
    let older = described
        .file_systems()
        .iter()
        .filter_map(|f| f.lustre_configuration()?.data_repository_configuration())
        .find(|c| c.import_path().is_some_and(|p| !p.is_empty()));
    if let Some(config) = older {
        return Ok(Links::FileSystem {
            import_path: config.import_path().unwrap_or_default().to_owned(),
            export_path: config.export_path().map(str::to_owned),
            auto_import: config.auto_import_policy().map(|p| p.as_str().to_owned()),
            lifecycle: config.lifecycle().map(|l| l.as_str().to_owned()),
        });
    }
    let by_file_system = Filter::builder()
        .name(FilterName::FileSystemId)
        .values(fs.as_str())
        .build();
    let mut pages = client
        .describe_data_repository_associations()
        .filters(by_file_system)
        .into_paginator()
        .send();
    let mut associations = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| {
            let class = match e.as_service_error() {
                Some(AssociationsError::FileSystemNotFound(_)) => Some(Class::NotFound),
                Some(
                    AssociationsError::BadRequest(_)
                    | AssociationsError::InvalidDataRepositoryType(_),
                ) => Some(Class::Rejected),
                _ => None,
            };
            classify("DescribeDataRepositoryAssociations", e, class)
        })?;
        associations.extend(page.associations().iter().map(association));
    }
    Ok(Links::Associations { associations })
}

fn association(a: &DataRepositoryAssociation) -> Association {
    let s3 = a.s3();
    let events = |e: Option<&[aws_sdk_fsx::types::EventType]>| {
        e.unwrap_or_default()
            .iter()
            .map(|e| e.as_str().to_owned())
            .collect()
    };
    Association {
        id: a.association_id().unwrap_or_default().to_owned(),
        file_system_path: a.file_system_path().unwrap_or("/").to_owned(),
        data_repository_path: a.data_repository_path().unwrap_or_default().to_owned(),
        lifecycle: a.lifecycle().map_or("UNKNOWN", |l| l.as_str()).to_owned(),
        auto_import: events(s3.and_then(|s| s.auto_import_policy()).map(|p| p.events())),
        auto_export: events(s3.and_then(|s| s.auto_export_policy()).map(|p| p.events())),
    }
}
